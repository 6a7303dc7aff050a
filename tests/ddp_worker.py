"""Run by tests/test_distributed.py under torchrun: train one of the two
models (argv[2]: "seq2seq" or "lm"), then save this replica's initial and
final weights and its recorded loss to OUT/rank<r>.pt."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from literate_transformer.lm import TransformerLM, train_lm
from literate_transformer.model import Transformer
from literate_transformer.tasks import SyntheticTask
from literate_transformer.text import load_corpus
from literate_transformer.train import History, train

TASK = SyntheticTask("reverse", num_symbols=6, max_len=6)
STEPS, BATCH = 5, 8


def small_model(kind: str = "seq2seq") -> nn.Module:
    """No dropout: the processes differ only in their data."""
    torch.manual_seed(0)
    sizes = dict(d_model=16, num_heads=2, d_ff=32, dropout=0.0)
    if kind == "lm":
        return TransformerLM(len(load_corpus().vocab), max_len=16, **sizes)
    size = TASK.vocab_size
    return Transformer(size, size, **sizes)


def run(kind: str, model: nn.Module) -> History:
    """The few steps each test trains, in one process or in each of two."""
    if kind == "lm":
        assert isinstance(model, TransformerLM)
        options = dict(batch_size=BATCH, length=16, eval_every=STEPS)
        return train_lm(model, load_corpus(), steps=STEPS, **options)
    assert isinstance(model, Transformer)
    return train(model, TASK, steps=STEPS, batch_size=BATCH, progress=False)


def main(out: Path, kind: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model = small_model(kind)
    initial = {name: weight.clone() for name, weight in model.state_dict().items()}
    history = run(kind, model)
    record = {"initial": initial, "state": model.state_dict(), "loss": history.loss}
    torch.save(record, out / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
