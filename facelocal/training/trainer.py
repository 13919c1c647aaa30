"""The training loop: SGD with the paper's schedule, mixed precision on CUDA, checkpoints, resume and CSV logs.

A checkpoint is ``{"model": state_dict, "optimizer", "scaler", "epoch", "iteration", "config": preset name}``;
``facelocal.models.read_state_dict`` reads its ``model`` entry, so ``facelocal detect --weights``, ``export onnx``
and the service take it as it is.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from facelocal.anchors import generate_anchors
from facelocal.config import DEFAULT_PRESET, get_config
from facelocal.data.annotations import LabelledImage
from facelocal.data.augment import AugmentConfig, Augmenter
from facelocal.data.dataset import FaceDataset, TrainBatch, collate
from facelocal.models.retinaface import RetinaFace, build_model, read_state_dict
from facelocal.training.loss import LossConfig, LossTerms, MultiBoxLoss
from facelocal.training.schedule import ScheduleConfig, learning_rate

ITERATION_LOG = "iterations.csv"
EPOCH_LOG = "epochs.csv"
_TERMS = LossTerms._fields


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs besides the data.

    model: preset name (:data:`facelocal.config.PRESETS`). max_iterations: stop early after this many optimiser
    steps in total (for smoke runs; the epoch it cuts short counts as done). repeat: passes over the image list per
    epoch. save_every: epochs between
    checkpoints (the last one is always saved). device: ``auto`` picks CUDA when present. amp: mixed precision,
    used on CUDA only. finetune: public or trained checkpoint to start from; resume: a checkpoint of this trainer
    whose model, optimiser and epoch are restored. freeze_batchnorm: keep BatchNorm running statistics fixed
    (affine weights still learn); ``None`` means frozen exactly when fine-tuning, because a few steps on small
    batches of crops shift the statistics of a converged network enough to lose faces.
    """

    out_dir: Path
    model: str = DEFAULT_PRESET
    batch_size: int = 32
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    max_iterations: int | None = None
    repeat: int = 1
    save_every: int = 10
    workers: int = 4
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    finetune: Path | None = None
    resume: Path | None = None
    freeze_batchnorm: bool | None = None
    progress: bool = True

    @property
    def batchnorm_frozen(self) -> bool:
        return self.finetune is not None if self.freeze_batchnorm is None else self.freeze_batchnorm


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class TrainResult:
    """Where the final checkpoint went, how far training got and the mean loss terms of each epoch run."""

    checkpoint: Path
    epochs: int
    iterations: int
    epoch_losses: list[dict[str, float]]


class Trainer:
    """Trains a :class:`RetinaFace` on labelled images under a :class:`TrainConfig`."""

    def __init__(self, config: TrainConfig, records: list[LabelledImage]) -> None:
        torch.manual_seed(config.seed)
        self.config = config
        self.device = resolve_device(config.device)
        self.amp = config.amp and self.device.type == "cuda"
        self.model_config = get_config(config.model)
        self.model: RetinaFace = build_model(self.model_config)
        if config.finetune is not None:
            self.model.load_state_dict(read_state_dict(config.finetune), strict=True)
        self.model.to(self.device)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=config.schedule.warmup_lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        size = config.augment.image_size
        anchors = generate_anchors(size, size, self.model_config.levels).to(self.device)
        self.criterion = MultiBoxLoss(self.model_config, anchors, config.loss)
        dataset = FaceDataset(records, Augmenter(config.augment), repeat=config.repeat)
        self.loader = DataLoader(
            dataset,
            batch_size=config.batch_size,
            shuffle=True,
            num_workers=config.workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            # BatchNorm needs more than one image per step; keep a tiny set from yielding no batch at all.
            drop_last=len(dataset) >= config.batch_size,
            persistent_workers=config.workers > 0,
        )
        self.start_epoch = 0
        self.iteration = 0
        if config.resume is not None:
            self._restore(config.resume)

    def _restore(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state.get("config") != self.model_config.name:
            raise ValueError(f"{path} was trained as {state.get('config')!r}, not {self.model_config.name!r}")
        self.model.load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"])
        self.iteration = int(state["iteration"])

    def save(self, path: Path, epoch: int) -> Path:
        """Write a checkpoint after ``epoch`` completed epochs."""
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "iteration": self.iteration,
            "config": self.model_config.name,
        }
        torch.save(state, path)
        return path

    def step(self, batch: TrainBatch, lr: float) -> LossTerms:
        """One optimiser step at learning rate ``lr``; returns the detached loss terms."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = batch.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            outputs = self.model(batch.images)
        terms = self.criterion(outputs, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms.total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.iteration += 1
        return LossTerms(*(t.detach() for t in terms))

    def fit(self) -> TrainResult:
        config = self.config
        out = Path(config.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        per_epoch = len(self.loader)
        epoch_losses: list[dict[str, float]] = []
        epoch = self.start_epoch
        with (
            _CsvLog(out / ITERATION_LOG, ["epoch", "iteration", "lr", *_TERMS, "images_per_s"]) as iteration_log,
            _CsvLog(out / EPOCH_LOG, ["epoch", "iterations", *_TERMS, "seconds"]) as epoch_log,
        ):
            while epoch < config.schedule.epochs and not self._done():
                self._train_mode()
                sums = torch.zeros(len(_TERMS), device=self.device)
                steps, started = 0, time.perf_counter()
                bar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{config.schedule.epochs}", disable=not config.progress)
                tick = time.perf_counter()
                for index, batch in enumerate(bar):
                    lr = learning_rate(config.schedule, epoch + index / per_epoch)
                    terms = self.step(batch, lr)
                    values = torch.stack(list(terms))
                    sums += values
                    steps += 1
                    now = time.perf_counter()
                    numbers = values.tolist()
                    iteration_log.write([epoch + 1, self.iteration, lr, *numbers, len(batch.images) / (now - tick)])
                    tick = now
                    bar.set_postfix(
                        loss=f"{numbers[0]:.3f}",
                        cls=f"{numbers[1]:.3f}",
                        box=f"{numbers[2]:.3f}",
                        lmk=f"{numbers[3]:.3f}",
                        lr=f"{lr:.1e}",
                    )
                    if self._done():
                        break
                epoch += 1
                means = dict(zip(_TERMS, (sums / max(steps, 1)).tolist(), strict=True))
                epoch_losses.append(means)
                epoch_log.write([epoch, steps, *means.values(), time.perf_counter() - started])
                if config.save_every > 0 and epoch % config.save_every == 0:
                    self.save(out / f"epoch_{epoch:03d}.pt", epoch)
        final = self.save(out / "final.pt", epoch)
        return TrainResult(final, epoch, self.iteration, epoch_losses)

    def _train_mode(self) -> None:
        self.model.train()
        if self.config.batchnorm_frozen:
            for module in self.model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def _done(self) -> bool:
        return self.config.max_iterations is not None and self.iteration >= self.config.max_iterations


class _CsvLog:
    """Appends rows to a CSV file (header written once), flushed per row so a crash loses nothing."""

    def __init__(self, path: Path, header: list[str]) -> None:
        fresh = not path.exists()
        self.handle = path.open("a", newline="")
        self.writer = csv.writer(self.handle)
        if fresh:
            self.writer.writerow(header)

    def write(self, row: list) -> None:
        self.writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
        self.handle.flush()

    def __enter__(self) -> _CsvLog:
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()
