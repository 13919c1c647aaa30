"""The paper's learning-rate schedule: linear warm-up, then step decay."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleConfig:
    """Warm up linearly from ``warmup_lr`` to ``base_lr`` over ``warmup_epochs``, then multiply by ``gamma`` at
    each of ``milestones``; training ends after ``epochs`` (the paper: 1e-3 -> 1e-2 over 5, /10 at 55 and 68,
    80 epochs)."""

    base_lr: float = 1e-2
    warmup_lr: float = 1e-3
    warmup_epochs: float = 5.0
    milestones: tuple[float, ...] = (55.0, 68.0)
    gamma: float = 0.1
    epochs: int = 80


def learning_rate(config: ScheduleConfig, epoch: float) -> float:
    """The rate at fractional ``epoch`` (``epoch + iteration / iterations_per_epoch``, starting at 0)."""
    if epoch < config.warmup_epochs:
        return config.warmup_lr + (config.base_lr - config.warmup_lr) * epoch / config.warmup_epochs
    decays = sum(epoch >= milestone for milestone in config.milestones)
    return config.base_lr * config.gamma**decays
