"""The training loop under torchrun, for both models (train and train_lm):
two CPU processes, DistributedDataParallel, gloo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# tests/ is on the path: pytest puts a test file's folder there ("prepend"
# import mode), as Python does for a script (torchrun runs ddp_worker.py so).
from ddp_worker import run, small_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind", ["seq2seq", "lm"])
def test_two_processes_keep_identical_replicas_on_different_data(kind, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    worker = str(ROOT / "tests" / "ddp_worker.py")
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    done = subprocess.run(
        [*launch, "--nproc_per_node", "2", worker, str(tmp_path), kind],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for name, weight in first["state"].items():
        assert torch.equal(weight, second["state"][name]), name  # same weights
    moved = [
        n for n, w in first["state"].items() if not torch.equal(w, first["initial"][n])
    ]
    assert moved, "training changed no weight"
    assert first["loss"] == second["loss"]  # the recorded loss: a mean over processes
    # Had both processes drawn the same batches, averaging their gradients
    # would reproduce a single-process run. It does not.
    alone = small_model(kind)
    history = run(kind, alone)
    assert history.loss != first["loss"]
    assert any(
        not torch.allclose(w, first["state"][n], atol=1e-6)
        for n, w in alone.state_dict().items()
    )
