"""Run by tests/test_distributed.py under torchrun: train, then report this
replica's weights and first batch to OUT/rank<r>.pt."""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

from literate_transformer.model import Transformer
from literate_transformer.tasks import SyntheticTask
from literate_transformer.train import train

dist.init_process_group("gloo")
rank = dist.get_rank()
task = SyntheticTask("reverse", num_symbols=6, max_len=6)
torch.manual_seed(0)
model = Transformer(task.vocab_size, task.vocab_size, d_model=16, num_heads=2, d_ff=32)
initial = {name: weight.clone() for name, weight in model.state_dict().items()}
history = train(model, task, steps=5, batch_size=8, progress=False, eval_every=5)
first_batch = task.sample(8, torch.Generator().manual_seed(0 * 1000 + rank + 1)).src
torch.save(
    {
        "initial": initial,
        "state": model.state_dict(),
        "first_batch": first_batch,
        "loss": history.loss,
    },
    os.path.join(sys.argv[1], f"rank{rank}.pt"),
)
dist.destroy_process_group()
