"""Profile the encoder comparisons of the bench: where does each spend its time?

    python -m benchmarks.profile_encoder [--steps N] [--rows K] [--mode train|infer]
                                         [--threads N]

Runs the training step (forward, backward, Adam) or the inference forward of
our EncoderLayer stack and of nn.TransformerEncoder, at the bench's reference
size and on the same batch, under torch.profiler, and prints the operators
with the most self CPU time for each, per step.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks import cases, measure


def profiled(step: Callable[[], object], steps: int, rows: int, title: str) -> None:
    """Warm up, then print the top operators by self CPU time over `steps` calls."""
    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) / steps / 1e3
    print(f"\n=== {title}: {total:.1f} ms of self CPU time per step ===")
    print(
        prof.key_averages().table(
            sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=48
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=18)
    parser.add_argument("--mode", choices=("train", "infer"), default="train")
    parser.add_argument(
        "--threads", type=int, help="torch.set_num_threads; 1 on a busy machine"
    )
    args = parser.parse_args()
    if args.threads:
        # On cores shared with other jobs, threads of one op wait for each
        # other at every barrier; one thread gives steadier per-op times.
        torch.set_num_threads(args.threads)
    pair = cases.encoder_pair("cpu")
    x, real, pad = pair.x, pair.real, ~pair.real
    ours, theirs = pair.ours, pair.theirs
    if args.mode == "train":
        p = measure.FLOAT32
        steps = {
            "ours train": measure.training_step(
                ours.train(), lambda: ours(x, real), p, "cpu"
            ),
            "nn train": measure.training_step(
                theirs.train(), lambda: theirs(x, src_key_padding_mask=pad), p, "cpu"
            ),
        }
    else:
        ours.eval(), theirs.eval()
        steps = {
            "ours infer": measure.forward_only(lambda: ours(x, real)),
            "nn infer": measure.forward_only(
                lambda: theirs(x, src_key_padding_mask=pad)
            ),
        }
    torch.manual_seed(0)
    for title, step in steps.items():
        profiled(step, args.steps, args.rows, title)


if __name__ == "__main__":
    main()
