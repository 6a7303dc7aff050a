"""A tiny experiment for the recording tests (tests/test_recording.py).

Each run notes in $LT_TINY_LOG that it ran (seed, steps, process), waits `pause`
seconds (and, from seed 2 on, while the file $LT_TINY_HOLD exists), and trains
nothing: its rows and its one loss depend on the seed
and the settings only, so that records made any way can be compared.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from lab.records import Experiment, write_records


def count(*, seed: int, steps: int, pause: float) -> dict[str, Any]:
    log = os.environ.get("LT_TINY_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(f"{seed} {steps} {os.getpid()}\n")
    time.sleep(pause)
    hold = os.environ.get("LT_TINY_HOLD")  # the interruption tests: seeds from 2 on
    while hold and seed >= 2 and os.path.exists(hold):  # wait to be interrupted,
        time.sleep(0.05)  # however slowly the test that interrupts them runs
    logits = torch.linspace(-1.0, 1.0, 4 * steps).reshape(steps, 4) * (seed + 1)
    with torch.enable_grad():
        loss = F.cross_entropy(logits.requires_grad_(), torch.zeros(steps).long())
    return {"value": seed * steps + 0.5, "loss": loss.item()}


TINY = Experiment(
    name="tiny",
    chapter="x.md",
    run=count,
    settings={"steps": 3, "pause": 0.1},
    development=(0, 1),
    held_out=(2, 3, 4, 5),
    key=(),
    tolerance={"value": 0.0},
)


def main() -> None:
    """python -c 'from tests.tiny_lab import main; main()' FOLDER JOBS"""
    write_records([TINY], Path(sys.argv[1]), int(sys.argv[2]))
