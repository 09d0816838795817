"""Training under torchrun: 2 CPU processes with Gloo on 127.0.0.1, started by tests/ddp_worker.py."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reactivate.errors import ReactivateError
from reactivate.training import ResumeMismatchError, TrainConfig, evaluate, fit, setup_distributed
from training_helpers import differing_tensors, digits_subset, make_tiny, save_splits, tiny_splits

WORKER = Path(__file__).with_name("ddp_worker.py")
sys.path.insert(0, str(WORKER.parent))
from ddp_worker import MATCH_CONFIG, RESUME_CONFIG  # noqa: E402

TORCHRUN_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(data_file: Path, out: Path, stage: str) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        str(WORKER), str(data_file), str(out), stage,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "CUDA_VISIBLE_DEVICES": ""}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    completed = subprocess.run(command, capture_output=True, text=True, timeout=TORCHRUN_TIMEOUT_S, env=env)
    assert completed.returncode == 0, f"torchrun {stage} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}"


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    data_file = root / "data.pt"
    save_splits(digits_subset(), data_file)
    torchrun(data_file, root, "first")
    return root, data_file


def test_ddp_matches_single_process(ddp_run, tmp_path):
    root, _ = ddp_run
    distributed = torch.load(root / "match.pt", weights_only=True)
    rank0, rank1 = distributed["states"]
    assert differing_tensors(rank0, rank1) == []

    # One process with the global batch of the two: 2 x 8.
    model = make_tiny()
    single = fit(model, digits_subset(), TrainConfig(**{**MATCH_CONFIG, "batch_size": 16}), tmp_path)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(rank0[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    for mine, theirs in zip(single.history, distributed["history"]):
        assert theirs["train_loss_mean"] == pytest.approx(mine.train_loss_mean, rel=1e-5)
        assert theirs["test_loss"] == pytest.approx(mine.test_loss, rel=1e-5)
        assert theirs["test_accuracy"] == mine.test_accuracy


def test_ddp_writes_files_on_rank0_only(ddp_run):
    root, _ = ddp_run
    assert (root / "match" / "rank0" / "checkpoint.pt").is_file()
    assert (root / "match" / "rank0" / "history.csv").is_file()
    assert not (root / "match" / "rank1").exists()
    log = (root / "full" / "train.log").read_text()
    for epoch in (1, 2, 3):
        assert log.count(f"epoch {epoch}/3:") == 1
    assert "2 process(es), global batch 16" in log


def test_ddp_activation_finetune_keeps_frozen(ddp_run):
    root, _ = ddp_run
    record = torch.load(root / "finetune.pt", weights_only=True)
    start, (rank0, rank1) = record["start"], record["states"]
    assert record["trainable"] == ["act1.beta", "act1.gamma", "act2.beta", "act2.gamma"]
    assert record["epochs"] == [6, 7]
    assert differing_tensors(rank0, rank1) == []
    changed = differing_tensors(start, rank0)
    assert changed, "no activation parameter changed"
    assert set(changed) <= set(record["trainable"])


def test_single_process_rejects_ddp_checkpoint(ddp_run):
    root, _ = ddp_run
    model = make_tiny(adaptive=True, dropout=0.3)
    with pytest.raises(ResumeMismatchError, match=r"world_size \(checkpoint 2, now 1\)"):
        fit(model, digits_subset(), TrainConfig(**{**RESUME_CONFIG, "epochs": 4}), root / "full")


def test_ddp_resume_matches_uninterrupted(ddp_run):
    root, data_file = ddp_run
    torchrun(data_file, root, "resume")
    full = torch.load(root / "full.pt", weights_only=True)
    resumed = torch.load(root / "resumed.pt", weights_only=True)
    for rank in (0, 1):
        assert differing_tensors(full["states"][rank], resumed["states"][rank]) == [], rank
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    for first, second in zip(full["history"], resumed["history"]):
        assert first["train_loss_mean"] == second["train_loss_mean"]
        assert first["test_accuracy"] == second["test_accuracy"]


def test_setup_without_torchrun_is_single_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = setup_distributed()
    assert (info.rank, info.world_size, info.local_rank, info.backend) == (0, 1, 0, None)
    assert info.is_main
    assert not info.distributed
    assert not torch.distributed.is_initialized()


def test_fit_under_torchrun_needs_process_group(monkeypatch, tmp_path):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ReactivateError, match="call reactivate.training.setup_distributed"):
        fit(make_tiny(), tiny_splits(), TrainConfig(epochs=1, progress=False), tmp_path)


def test_evaluate_distributed_needs_process_group():
    with pytest.raises(ReactivateError, match="needs an initialized process group"):
        evaluate(make_tiny(), tiny_splits().test, distributed=True)
