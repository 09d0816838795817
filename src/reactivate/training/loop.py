"""The training loop: whole-tensor batches, checkpoints after every epoch, resume, DDP.

:func:`fit` trains a classifier on a :class:`~reactivate.data.DatasetSplits`
held as whole tensors on the training device. Each epoch draws one seeded
permutation of the training set, the same on all processes. Global batch
``i`` is ``permutation[i * B : (i + 1) * B]`` with ``B = batch_size *
world_size``, and process ``r`` trains on the ``r``-th of ``world_size``
near-equal pieces of it. Each process scales its summed loss so that the
gradient DDP averages equals the gradient of the mean loss over the global
batch. A run on ``W`` processes therefore takes the same optimizer steps as
one process with batch ``B``, up to floating-point rounding. Dropout and
augmentation break this equality, because their generators differ per
process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..errors import ReactivateError
from .checkpoint import (
    atomic_save,
    atomic_write_text,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from .config import RESUME_FREE_FIELDS, TrainConfig
from .distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    broadcast_object,
    current_dist_info,
    gather_objects,
    launched_by_torchrun,
)
from .errors import CheckpointError, ResumeMismatchError, TrainingDivergedError
from .evaluate import evaluation_sums
from .model_file import model_file_payload
from .results import EpochRecord, TrainResult, history_csv
from .setup import (
    _check_data,
    _check_prior_best,
    _derived_seed,
    _deterministic_mode,
    _environment,
    _log_file,
    _optimizer_groups,
    _resolve_device,
    _seed_globals,
    _split_bounds,
)

__all__ = ["fit", "CHECKPOINT_NAME", "BEST_MODEL_NAME", "FINAL_MODEL_NAME"]

logger = logging.getLogger("reactivate.training")

CHECKPOINT_NAME = "checkpoint.pt"
BEST_MODEL_NAME = "best.pt"
FINAL_MODEL_NAME = "final.pt"
# Steps between checks of the running loss for NaN or infinity; each check
# synchronizes the device (and the processes) once.
_FINITE_CHECK_STEPS = 50


def fit(
    model: nn.Module,
    data: Any,
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    prior_best: tuple[float, int] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` with RMSprop and cross-entropy, resuming if possible.

    Each epoch shuffles the training set with a seeded generator, trains on
    batches sliced from the on-device tensors (with batched random flips and
    translations when ``config.augment``), evaluates on the test set and
    writes, on rank 0 only, into ``run_dir``:

    * ``checkpoint.pt``: model, optimizer, epoch, history, best accuracy and
      the state of every random generator of every process, written
      atomically after each epoch;
    * ``best.pt``: model file of the weights with the best test accuracy so
      far (see :func:`~reactivate.training.load_model`);
    * ``history.csv``: one row per epoch (see :class:`EpochRecord`);
    * ``config.json``, ``train.log``, and at the end ``final.pt`` and
      ``result.json``.

    When ``run_dir/checkpoint.pt`` exists, training continues after its last
    epoch, to the same weights an uninterrupted run reaches (bit-identical on
    the CPU), provided the configuration matches except for the fields in
    :data:`~reactivate.training.config.RESUME_FREE_FIELDS`.

    Under ``torchrun`` (after :func:`~reactivate.training.setup_distributed`)
    the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`
    and ``config.batch_size`` is the batch of each process. Every process must
    call ``fit`` with the same arguments. Only rank 0 needs ``run_dir`` on its
    disk, because it reads the checkpoint and sends it to the others.

    Args:
        model (nn.Module): classifier returning logits; it is moved to the
            training device and trained in place. With
            ``trainable="activations"`` its other parameters stay frozen
            (``requires_grad=False``) after the call.
        data (DatasetSplits): ``train`` and ``test`` image sets.
        config (TrainConfig): hyper-parameters.
        run_dir (str | os.PathLike): folder for the run's files, created if
            missing.
        prior_best (tuple[float, int], optional): ``(accuracy, epoch)`` of an
            earlier stage such as pre-training, so ``best_accuracy`` and
            ``best_epoch`` of the result cover both stages. ``best.pt`` contains
            the best weights of this stage only. Default: None.

    Returns:
        TrainResult: history and best, final and initial accuracies.

    Raises:
        ReactivateError: invalid arguments, such as ``trainable="activations"``
            for a model without adaptive activations.
        ResumeMismatchError: the checkpoint in ``run_dir`` was written with a
            different configuration or number of processes.
        TrainingDivergedError: the training loss became NaN or infinite;
            the checkpoint of the last finished epoch stays in ``run_dir``.

    Example::

        >>> data = load_dataset("digits")
        >>> model = KerasNet(in_channels=1)
        >>> result = fit(model, data, TrainConfig(epochs=5), "runs/relu")
        >>> result.best_accuracy, result.best_epoch

    .. note::
        ``deterministic=True`` makes repeated runs on the same hardware and
        software give the same weights; CUDA and CPU results still differ.
        Dropout draws from each process's global generator, seeded with
        ``seed + rank``, so masks differ between processes. BatchNorm layers
        use per-process batch statistics unless ``config.sync_batchnorm``.
    """
    if not isinstance(config, TrainConfig):
        raise ReactivateError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(model, nn.Module):
        raise ReactivateError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_data(data)
    if prior_best is not None:
        prior_best = _check_prior_best(prior_best)

    info = current_dist_info()
    if launched_by_torchrun() and int(os.environ["WORLD_SIZE"]) > 1 and not info.distributed:
        raise ReactivateError(
            f"running under torchrun with WORLD_SIZE={os.environ['WORLD_SIZE']} but no process group is "
            "initialized; call reactivate.training.setup_distributed() before fit"
        )
    device = _resolve_device(config.device, info)
    run_dir = Path(run_dir)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    with _deterministic_mode(config.deterministic, device), _log_file(run_dir / "train.log", info.is_main):
        trainer = _Trainer(model, data, config, run_dir, info, device, prior_best)
        return trainer.run()


class _Trainer:
    """State of one call of :func:`fit`; split out so each step reads on its own."""

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        config: TrainConfig,
        run_dir: Path,
        info: DistInfo,
        device: torch.device,
        prior_best: tuple[float, int] | None,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.info = info
        self.device = device
        self.prior_best = prior_best
        self.checkpoint_path = run_dir / CHECKPOINT_NAME

        if config.sync_batchnorm and info.distributed:
            if device.type != "cuda":
                raise ReactivateError("TrainConfig.sync_batchnorm needs CUDA devices; set it to False on the CPU")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(device)
        self.train_set = data.train.to(device)
        self.test_set = data.test.to(device)

        self.optimizer = torch.optim.RMSprop(
            _optimizer_groups(self.model, config),
            lr=config.lr,
            alpha=config.rmsprop_alpha,
            eps=config.eps,
            momentum=config.momentum,
            centered=False,
        )
        self.augment = None
        if config.augment:
            from ..data import RandomFlipTranslate

            self.augment = RandomFlipTranslate(flip_p=config.flip_p, max_shift=config.max_shift)

        # The shuffling generator is the same on every process, so all of them
        # draw the same permutation; augmentation differs per process.
        self.generators = {
            "shuffle": torch.Generator().manual_seed(config.seed),
            "augment": torch.Generator(device=device).manual_seed(_derived_seed(config.seed, info.rank, 1)),
        }
        _seed_globals(config.seed + info.rank)

        self.history: list[EpochRecord] = []
        self.best_accuracy = -math.inf
        self.best_epoch = 0
        self.initial: tuple[float, float] | None = None

    # --- resume ---------------------------------------------------------------

    def _resume(self) -> bool:
        payload, problem = None, None
        if self.info.is_main and self.checkpoint_path.exists():
            try:
                payload = load_checkpoint(self.checkpoint_path)
            except CheckpointError as error:
                problem = str(error)
        # The other processes receive the failure too, so they raise instead of waiting.
        # NOTE: the whole checkpoint is pickled through the process group, which
        # suits models of this package's size but is slow for multi-GB models.
        payload, problem = broadcast_object((payload, problem))
        if problem is not None:
            raise CheckpointError(problem)
        if payload is None:
            return False

        saved = TrainConfig.from_dict(payload["config"])
        differences = saved.differences(self.config, ignore=RESUME_FREE_FIELDS)
        if payload["world_size"] != self.info.world_size:
            differences["world_size"] = (payload["world_size"], self.info.world_size)
        if differences:
            listed = ", ".join(f"{name} (checkpoint {old!r}, now {new!r})" for name, (old, new) in differences.items())
            raise ResumeMismatchError(
                f"cannot resume from {str(self.checkpoint_path)!r}: settings differ: {listed}; "
                "use the checkpoint's settings or another run folder"
            )
        try:
            self.model.load_state_dict(payload["model"], strict=True)
            self.optimizer.load_state_dict(payload["optimizer"])
        except (RuntimeError, ValueError, KeyError) as error:
            first_line = str(error).strip().splitlines()[0]
            raise CheckpointError(
                f"checkpoint {str(self.checkpoint_path)!r} does not fit this model: {first_line}"
            ) from None
        self.history = [EpochRecord.from_dict(record) for record in payload["history"]]
        self.best_accuracy = payload["best_accuracy"]
        self.best_epoch = payload["best_epoch"]
        self.initial = tuple(payload["initial"])
        restore_rng_state(payload["rng"][self.info.rank], self.device, self.generators)
        if self.info.is_main:
            logger.info("resumed from %s after epoch %d", self.checkpoint_path, payload["epoch"])
        return True

    # --- one epoch ------------------------------------------------------------

    def _train_epoch(self, network: nn.Module, epoch: int) -> torch.Tensor:
        """Train one epoch and return the mean loss of each global batch."""
        config, info = self.config, self.info
        images, labels = self.train_set.images, self.train_set.labels
        count = len(labels)
        global_batch = config.batch_size * info.world_size
        steps = math.ceil(count / global_batch)
        order = torch.randperm(count, generator=self.generators["shuffle"]).to(self.device)

        batch_sums = torch.zeros(steps, dtype=torch.float64, device=self.device)
        batch_sizes = torch.tensor(
            [min(global_batch, count - step * global_batch) for step in range(steps)],
            dtype=torch.float64,
            device=self.device,
        )
        show = config.progress and info.is_main and sys.stderr is not None and sys.stderr.isatty()
        last = config.epoch_offset + config.epochs
        network.train()
        with tqdm(total=steps, desc=f"epoch {epoch}/{last}", leave=False, disable=not show, dynamic_ncols=True) as bar:
            for step in range(steps):
                begin = step * global_batch
                size = min(global_batch, count - begin)
                start, stop = _split_bounds(size, info.rank, info.world_size)
                index = order[begin + start : begin + stop]
                inputs = images.index_select(0, index)
                targets = labels.index_select(0, index)
                if self.augment is not None:
                    inputs = self.augment(inputs, generator=self.generators["augment"])

                logits = network(inputs)
                loss_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
                # DDP averages gradients over processes, so scaling by W / size
                # makes the update that of the mean loss over the global batch.
                (loss_sum * (info.world_size / size)).backward()
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                batch_sums[step] = loss_sum.detach()

                if (step + 1) % _FINITE_CHECK_STEPS == 0:
                    self._check_finite(batch_sums[: step + 1].sum(), epoch)
                if show:
                    bar.update(1)
                    if (step + 1) % 20 == 0 or step + 1 == steps:
                        bar.set_postfix(loss=f"{loss_sum.item() / max(stop - start, 1):.4f}")
        all_reduce_sum(batch_sums)
        batch_losses = batch_sums / batch_sizes
        self._check_finite(batch_losses.sum(), epoch, reduced=True)
        return batch_losses

    def _check_finite(
        self, value: torch.Tensor, epoch: int, *, reduced: bool = False, what: str = "training loss"
    ) -> None:
        """Raise TrainingDivergedError on every process when ``value`` is NaN or infinite on any."""
        value = value.detach().to(torch.float64).reshape(1).clone()
        if not reduced:
            all_reduce_sum(value)
        loss = value.item()
        if math.isfinite(loss):
            return
        checkpoint = str(self.checkpoint_path) if self.checkpoint_path.exists() else None
        where = (
            f"the checkpoint of the last finished epoch stays at {checkpoint!r}"
            if checkpoint
            else "no epoch finished, so no checkpoint was written"
        )
        message = (
            f"training diverged in epoch {epoch}: the {what} became {loss}; {where}; "
            "lower TrainConfig.lr or check the inputs for NaN"
        )
        if self.info.is_main:
            logger.error(message)
        raise TrainingDivergedError(message, epoch=epoch, loss=loss, checkpoint=checkpoint)

    def _evaluate(self) -> tuple[float, float]:
        sums, _, _ = evaluation_sums(
            self.model, self.test_set, self.config.test_batch_size, self.device, self.info.rank, self.info.world_size
        )
        all_reduce_sum(sums)
        correct, loss_sum, count = sums.tolist()
        return correct / count, loss_sum / count

    # --- files ----------------------------------------------------------------

    def _write_config(self) -> None:
        document = {
            "config": self.config.to_dict(),
            "world_size": self.info.world_size,
            "global_batch_size": self.config.batch_size * self.info.world_size,
            "device": str(self.device),
            "environment": _environment(),
        }
        atomic_write_text(self.run_dir / "config.json", json.dumps(document, indent=2) + "\n")

    def _save_epoch(self) -> None:
        """Write the checkpoint and history of the finished epoch (rank 0) after gathering RNG states."""
        states = gather_objects(capture_rng_state(self.device, self.generators))
        if self.info.is_main:
            save_checkpoint(
                self.checkpoint_path,
                {
                    "config": self.config.to_dict(),
                    "world_size": self.info.world_size,
                    "model": {name: tensor.detach() for name, tensor in self.model.state_dict().items()},
                    "optimizer": self.optimizer.state_dict(),
                    "epoch": self.history[-1].epoch if self.history else self.config.epoch_offset,
                    "history": [record.to_dict() for record in self.history],
                    "best_accuracy": self.best_accuracy,
                    "best_epoch": self.best_epoch,
                    "initial": list(self.initial),
                    "rng": states,
                },
            )
            atomic_write_text(self.run_dir / "history.csv", history_csv(self.history))
        barrier()

    def _save_model(self, name: str, extra: dict[str, Any]) -> None:
        if self.info.is_main:
            atomic_save(model_file_payload(self.model, extra), self.run_dir / name)

    # --- the run --------------------------------------------------------------

    def _result(self) -> TrainResult:
        candidates = []
        if self.history:
            candidates.append((self.best_accuracy, self.best_epoch))
        if self.prior_best is not None:
            candidates.append(self.prior_best)
        if not candidates:
            candidates.append((self.initial[0], self.config.epoch_offset))
        # The highest accuracy wins, and the earlier epoch on a tie.
        best_accuracy, best_epoch = max(candidates, key=lambda pair: (pair[0], -pair[1]))
        return TrainResult(
            history=list(self.history),
            best_accuracy=best_accuracy,
            best_epoch=best_epoch,
            final_accuracy=self.history[-1].test_accuracy if self.history else self.initial[0],
            train_seconds=sum(record.seconds for record in self.history),
            initial_accuracy=self.initial[0],
            initial_loss=self.initial[1],
            world_size=self.info.world_size,
        )

    def run(self) -> TrainResult:
        config, info = self.config, self.info
        resumed = self._resume()
        if info.is_main:
            self._write_config()
        if not resumed:
            self.initial = self._evaluate()
            if info.is_main:
                logger.info(
                    "start: %d training and %d test images, %d process(es), global batch %d, device %s, "
                    "test accuracy %.2f%%",
                    len(self.train_set.labels),
                    len(self.test_set.labels),
                    info.world_size,
                    config.batch_size * info.world_size,
                    self.device,
                    100 * self.initial[0],
                )

        network: nn.Module = self.model
        if info.distributed:
            network = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None
            )

        first = len(self.history) + 1
        try:
            for local_epoch in range(first, config.epochs + 1):
                self._run_epoch(network, config.epoch_offset + local_epoch)
        except RuntimeError as error:
            if "does not have a deterministic implementation" in str(error):
                raise RuntimeError(
                    f"{str(error).strip().splitlines()[0]} Set TrainConfig.deterministic=False to allow it."
                ) from error
            raise

        result = self._result()
        if info.is_main:
            last_epoch = self.history[-1].epoch if self.history else config.epoch_offset
            self._save_model(FINAL_MODEL_NAME, {"epoch": last_epoch, "accuracy": result.final_accuracy})
            atomic_write_text(self.run_dir / "result.json", json.dumps(result.to_dict(), indent=2) + "\n")
            logger.info(
                "finished: best test accuracy %.2f%% at epoch %d, final %.2f%%",
                100 * result.best_accuracy,
                result.best_epoch,
                100 * result.final_accuracy,
            )
        barrier()
        return result

    def _run_epoch(self, network: nn.Module, epoch: int) -> None:
        started = time.perf_counter()
        batch_losses = self._train_epoch(network, epoch)
        accuracy, test_loss = self._evaluate()
        if math.isnan(test_loss):
            self._check_finite(torch.tensor(test_loss), epoch, reduced=True, what="test loss")
        record = EpochRecord(
            epoch=epoch,
            train_loss_mean=batch_losses.mean().item(),
            train_loss_var=batch_losses.var(correction=0).item() if batch_losses.numel() > 1 else 0.0,
            test_accuracy=accuracy,
            test_loss=test_loss,
            lr=self.optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - started,
        )
        self.history.append(record)
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = accuracy, epoch
            self._save_model(BEST_MODEL_NAME, {"epoch": epoch, "accuracy": accuracy})
        self._save_epoch()
        if self.info.is_main:
            logger.info(
                "epoch %d/%d: train loss %.4f (variance %.4g), test accuracy %.2f%%, test loss %.4f, lr %.3g, %.1f s",
                epoch,
                self.config.epoch_offset + self.config.epochs,
                record.train_loss_mean,
                record.train_loss_var,
                100 * accuracy,
                test_loss,
                record.lr,
                record.seconds,
            )
