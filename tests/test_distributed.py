"""train() under torchrun: two CPU processes, DistributedDataParallel, gloo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def test_two_processes_keep_identical_replicas_on_different_data(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(ROOT / "tests" / "ddp_worker.py"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert not torch.equal(first["first_batch"], second["first_batch"])  # own data
    assert first["loss"] != second["loss"]  # so each process saw its own loss
    for name, weight in first["state"].items():
        assert torch.equal(weight, second["state"][name]), name  # same weights
    moved = [
        n for n, w in first["state"].items() if not torch.equal(w, first["initial"][n])
    ]
    assert moved, "training changed no weight"
