"""CIFAR-10 loader on small batches written in the official python-pickle format."""

import pickle

import numpy as np
import pytest
import torch

from reactivate.data import DatasetError, load_dataset, read_cifar_pickle
from reactivate.data.cifar10 import CIFAR10_CLASSES

PER_BATCH = 20


def write_batch(path, data, labels, protocol=2):
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
    }
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def write_cifar(root, seed=0):
    """Write five training batches, a test batch and batches.meta; return the arrays."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for index, name in enumerate(names):
        data = rng.integers(0, 256, size=(PER_BATCH, 3072), dtype=np.uint8)
        labels = np.arange(PER_BATCH) % 10
        # Protocol 2 is what Python 2 wrote; protocol 5 is what numpy 2 writes today.
        write_batch(folder / name, data, labels, protocol=2 if index % 2 == 0 else 5)
        written[name] = (data, labels)
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_cases_per_batch": PER_BATCH, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def test_loads_official_layout(tmp_path):
    write_cifar(tmp_path)
    data = load_dataset("cifar10", tmp_path)
    assert data.name == "cifar10"
    assert data.image_shape == (3, 32, 32)
    assert data.num_classes == 10
    assert data.classes == CIFAR10_CLASSES
    assert data.train.images.shape == (5 * PER_BATCH, 3, 32, 32)
    assert data.test.images.shape == (PER_BATCH, 3, 32, 32)
    assert data.train.images.dtype == torch.float32
    assert data.train.labels.dtype == torch.int64


def test_pixel_layout_and_scaling(tmp_path):
    written = write_cifar(tmp_path)
    data = load_dataset("cifar10", tmp_path)
    raw, labels = written["data_batch_2"]
    image = data.train.images[PER_BATCH + 3]
    # Row layout: 1024 red values, then green, then blue, each 32x32 row-major.
    assert torch.equal(image[0, 0, :], torch.from_numpy(raw[3, 0:32]).float() / 255)
    assert torch.equal(image[1, 5, 7], torch.tensor(raw[3, 1024 + 5 * 32 + 7] / 255, dtype=torch.float32))
    assert torch.equal(image[2, 31, 31], torch.tensor(raw[3, 3071] / 255, dtype=torch.float32))
    assert data.train.labels[PER_BATCH + 3] == labels[3]
    test_raw, _ = written["test_batch"]
    expected = torch.from_numpy(test_raw).reshape(-1, 3, 32, 32).float() / 255
    assert torch.equal(data.test.images, expected)
    assert float(data.train.images.min()) >= 0.0
    assert float(data.train.images.max()) <= 1.0


def test_subsets_are_stratified(tmp_path):
    write_cifar(tmp_path)
    data = load_dataset("cifar10", tmp_path, train_subset=50, test_subset=10, seed=1)
    assert len(data.train) == 50
    assert torch.equal(torch.bincount(data.train.labels), torch.full((10,), 5))
    assert torch.equal(torch.bincount(data.test.labels), torch.ones(10, dtype=torch.int64))


def test_missing_folder_message(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "--download" in message
    assert "\n" not in message


def test_missing_file_message(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetError, match="lacks data_batch_4; download the files with the --download option"):
        load_dataset("cifar10", tmp_path)


def test_default_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REACTIVATE_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetError, match=str(tmp_path / "data" / "cifar-10-batches-py")):
        load_dataset("cifar10")


class OpensAFile:
    """Pickles to a call of open(); a plain pickle.load would create the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_rejected(tmp_path):
    write_cifar(tmp_path)
    marker = tmp_path / "created-by-pickle"
    batch = {b"data": OpensAFile(marker), b"labels": [0]}
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetError, match=r"was rejected: global \S+\.open is not allowed"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()


def test_truncated_batch_rejected(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DatasetError, match="not a readable CIFAR-10 batch"):
        load_dataset("cifar10", tmp_path)


@pytest.mark.parametrize(
    "data, labels, message",
    [
        (np.zeros((4, 3072), np.float32), [0, 1, 2, 3], "must be a uint8 array of shape"),
        (np.zeros((4, 1024), np.uint8), [0, 1, 2, 3], "must be a uint8 array of shape"),
        (np.zeros((4, 3072), np.uint8), [0, 1, 2], "4 images but 3 labels"),
        (np.zeros((2, 3072), np.uint8), [0, 10], "labels must lie in 0..9"),
    ],
)
def test_invalid_batch_content(tmp_path, data, labels, message):
    write_cifar(tmp_path)
    write_batch(tmp_path / "cifar-10-batches-py" / "data_batch_3", data, labels)
    with pytest.raises(DatasetError, match=message):
        load_dataset("cifar10", tmp_path)


def test_read_cifar_pickle_keeps_bytes_keys(tmp_path):
    path = tmp_path / "batch"
    write_batch(path, np.zeros((1, 3072), np.uint8), [7])
    batch = read_cifar_pickle(path)
    assert batch[b"labels"] == [7]
    assert batch[b"data"].shape == (1, 3072)



@pytest.fixture
def local_server(tmp_path):
    """Serve tmp_path/served over HTTP on 127.0.0.1, so the download path runs without the internet."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_unpacks_verified_archive(tmp_path, monkeypatch, local_server):
    import hashlib
    import tarfile

    from reactivate.data import cifar10

    served, url = local_server
    written = write_cifar(tmp_path / "source")
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "source" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(cifar10, "CIFAR10_URL", f"{url}/cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())

    root = tmp_path / "root"
    data = load_dataset("cifar10", root, download=True)
    assert len(data.train) == 5 * PER_BATCH
    expected = torch.from_numpy(written["test_batch"][0]).reshape(-1, 3, 32, 32).float() / 255
    assert torch.equal(data.test.images, expected)
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(".cifar10-")]
    assert leftovers == []


def test_download_checksum_mismatch(tmp_path, monkeypatch, local_server):
    from reactivate.data import cifar10

    served, url = local_server
    (served / "cifar-10-python.tar.gz").write_bytes(b"not the archive")
    monkeypatch.setattr(cifar10, "CIFAR10_URL", f"{url}/cifar-10-python.tar.gz")
    root = tmp_path / "root"
    with pytest.raises(DatasetError, match="failed"):
        load_dataset("cifar10", root, download=True)
    assert not (root / "cifar-10-batches-py").exists()
