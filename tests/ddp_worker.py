"""Run by tests/test_distributed.py under torchrun: train, then save this
replica's initial and final weights and its recorded loss to OUT/rank<r>.pt."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from literate_transformer.model import Transformer
from literate_transformer.tasks import SyntheticTask
from literate_transformer.train import train

TASK = SyntheticTask("reverse", num_symbols=6, max_len=6)
STEPS, BATCH = 5, 8


def small_model() -> Transformer:
    """No dropout: the processes differ only in their data."""
    torch.manual_seed(0)
    size = TASK.vocab_size
    return Transformer(size, size, d_model=16, num_heads=2, d_ff=32, dropout=0.0)


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model = small_model()
    initial = {name: weight.clone() for name, weight in model.state_dict().items()}
    history = train(model, TASK, steps=STEPS, batch_size=BATCH, progress=False)
    record = {"initial": initial, "state": model.state_dict(), "loss": history.loss}
    torch.save(record, out / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
