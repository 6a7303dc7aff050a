"""Benchmarks: literate_transformer against torch.nn, measured in one run.

    python -m benchmarks.bench [--quick] [--json PATH] [--device cpu|cuda]
                               [--only NAME,NAME] [--threads N]

Every comparison is a ratio taken inside one process: the candidates of a case
run round-robin inside each repeat (so a slow phase of a busy machine hits all
of them), after warm-up calls, and the median over the repeats is kept. The
table gives the median time of one call, a throughput where it means
something, and the ratio to the case's baseline (> 1: faster, or less memory,
than the baseline). Rows with a target say PASS or MISS.

Benchmarks (names for --only):

    attention     MultiHeadAttention explicit vs fused vs nn.MultiheadAttention,
                  and the kernels alone (attention() vs scaled_dot_product_attention)
    encoder-train training step of two EncoderLayers vs nn.TransformerEncoder
    encoder-infer the same in eval + no_grad, nn on its fast path
    seq2seq-train training step of Transformer vs nn.Transformer (+ embeddings)
    flops         achieved FLOP/s of the encoder training step vs a large matmul
    memory        peak memory of attention at long T, explicit vs fused
    packing       TransformerLM training step: documents packed into rows with
                  a document mask vs one document per row, in real tokens/s
    dropout       nn.Dropout vs FastDropout (15 random bits per coordinate),
                  forward and backward on (N, T, d_ff)
    varlen        the engine's attention_real at T = 32 to 256: the heads in
                  the padded layout vs one call a sequence over its own length
    decode        Transformer.greedy_decode of 32, 128 and 256 tokens with the
                  keys and values cached vs the prefix rerun at every step
    lm-train      TransformerLM as GPT-2 vs transformers' GPT-2 and a
                  nanoGPT-style model (peers.py): training step with AdamW
    lm-eval       the same three: evaluation forward and loss
    lm-decode     greedy decoding of 128 tokens at batch 1 and 32, cached
    lm-run        a whole training run of 400 steps, warm-up included
    lm-flops      the lm-train steps' FLOP/s vs a large matmul; our products alone

With --device cuda every benchmark runs in float32 and in bfloat16. The JSON
record (default benchmarks/out/bench-DEVICE-DATE.json) holds the machine, the
versions, the settings and every sample of every measurement.

The code: measure.py times a call and keeps the samples; cases.py builds each
benchmark's inputs and candidates and holds the targets; report.py prints the
table and computes the numbers the Performance page quotes; this file is the
command and writes the record.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from benchmarks.cases import (
    AFTER_OTHERS,
    BATCH,
    BENCH_FUNCTIONS,
    BENCHES,
    D_FF,
    D_MODEL,
    DROPOUT,
    HEADS,
    LAYERS,
    PAD_FRACTION,
    SEQ,
    VOCAB,
    apply_targets,
)
from benchmarks.measure import BFLOAT16, FLOAT32, Row, Settings
from benchmarks.report import print_table


def machine() -> dict[str, Any]:
    """Where the numbers come from: they mean little without it."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
    }
    cpuinfo = Path("/proc/cpuinfo")  # platform.processor() is often just x86_64
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        info["cpu_model"] = names[0] if names else None
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_record(
    path: Path, settings: Settings, rows: list[Row], errors: list[str]
) -> None:
    """The JSON record: machine, settings, every row with its samples."""
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": settings.device,
        "machine": machine(),
        "settings": {
            **asdict(settings),
            "only": sorted(settings.only),
            "reference": dict(
                d_model=D_MODEL,
                heads=HEADS,
                d_ff=D_FF,
                layers=LAYERS,
                batch=BATCH,
                seq=SEQ,
                dropout=DROPOUT,
                pad_fraction=PAD_FRACTION,
                vocab=VOCAB,
            ),
        },
        "rows": [asdict(row) for row in rows],
        "errors": errors,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


def parse_args(argv: list[str] | None = None) -> tuple[Settings, Path]:
    """Settings from the command line, and the path of the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases, repeats")
    parser.add_argument("--json", type=Path, help="where to write the JSON record")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads(N)")
    parser.add_argument(
        "--only", default=",".join(BENCHES), help=f"among {', '.join(BENCHES)}"
    )
    args = parser.parse_args(argv)
    if args.threads:  # recorded in the JSON record, as torch_num_threads
        torch.set_num_threads(args.threads)
    only = frozenset(args.only.split(","))
    if not only <= set(BENCHES):
        parser.error(f"--only: unknown {sorted(only - set(BENCHES))}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    settings = Settings(
        device=args.device,
        quick=args.quick,
        repeats=3 if args.quick else 7,
        warmup=2,
        min_time=0.01 if args.quick else 0.05,
        lengths=(64, 256) if args.quick else (64, 128, 256, 1024),
        long_length=2048,
        only=only,
    )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    default = Path(__file__).parent / "out" / f"bench-{args.device}-{stamp}.json"
    return settings, args.json or default


def run(settings: Settings) -> Iterator[tuple[str, list[Row] | str]]:
    """Each benchmark in each precision: its rows, or the error it raised.

    An error is recorded and the run goes on: a change in the package that
    breaks one benchmark should not hide the others.
    """
    precisions = [FLOAT32] + ([BFLOAT16] if settings.device == "cuda" else [])
    done: list[Row] = []
    for precision in precisions:
        for name in BENCHES:
            if name not in settings.only:
                continue
            label = f"{name} {precision.name}"
            print(f"... {label}", file=sys.stderr, flush=True)
            try:
                if name in AFTER_OTHERS:
                    rows = AFTER_OTHERS[name](settings, precision, done)
                else:
                    rows = BENCH_FUNCTIONS[name](settings, precision)
            except Exception:
                yield label, traceback.format_exc()
                continue
            done += rows
            yield label, rows


def main(argv: list[str] | None = None) -> int:
    settings, path = parse_args(argv)
    start = time.perf_counter()
    rows: list[Row] = []
    errors: list[str] = []
    for label, result in run(settings):
        if isinstance(result, str):
            print(f"ERROR in {label}:\n{result}", file=sys.stderr)
            errors.append(f"{label}: {result}")
        else:
            rows += result
    apply_targets(rows)
    print_table(rows)
    write_record(path, settings, rows, errors)
    print(f"\n{time.perf_counter() - start:.0f} s; record written to {path}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
