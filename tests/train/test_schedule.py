"""The paper's learning-rate schedule at its key epochs."""

from __future__ import annotations

import pytest

from facelocal.training.schedule import ScheduleConfig, learning_rate


@pytest.mark.parametrize(
    "epoch, expected",
    [
        (0, 1e-3),
        (2.5, 5.5e-3),
        (4.999, 1e-2),
        (5, 1e-2),
        (54.99, 1e-2),
        (55, 1e-3),
        (67.9, 1e-3),
        (68, 1e-4),
        (79.9, 1e-4),
    ],
)
def test_paper_schedule(epoch, expected):
    assert learning_rate(ScheduleConfig(), epoch) == pytest.approx(expected, rel=1e-3)


def test_schedule_is_configurable():
    config = ScheduleConfig(base_lr=0.1, warmup_lr=0.0, warmup_epochs=0, milestones=(2, 4), gamma=0.5, epochs=6)
    assert [learning_rate(config, e) for e in range(6)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert ScheduleConfig().epochs == 80
