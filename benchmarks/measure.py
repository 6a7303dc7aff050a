"""Measurement: how the benchmarks time a call, and what a measurement keeps.

Every comparison is a ratio taken inside one process: the candidates of a case
run round-robin inside each repeat (so a slow phase of a busy machine hits all
of them), after warm-up calls, and the median over the repeats is kept.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn


def synchronize(device: str) -> None:
    """Wait for queued kernels: CUDA calls return before the work is done."""
    if device == "cuda":
        torch.cuda.synchronize()


def measure_samples(
    candidates: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    *,
    device: str = "cpu",
    min_time: float = 0.0,
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, one sample per repeat.

    Inside each repeat every candidate runs once, round-robin, starting from a
    different candidate each repeat, so that neither a drift of the machine
    (other jobs, clock changes) nor the cache left by a neighbour favours one.
    A sample times `number` back-to-back calls, chosen in the warm-up so that a
    sample lasts at least `min_time`: short calls are then above the timer's
    and the scheduler's resolution.
    """
    names = list(candidates)
    number = dict.fromkeys(names, 1)
    for i in range(warmup):  # first calls allocate, pick kernels, fill caches
        for name in names:
            synchronize(device)
            start = time.perf_counter()
            candidates[name]()
            synchronize(device)
            if i == warmup - 1 and min_time > 0:
                elapsed = max(time.perf_counter() - start, 1e-9)
                number[name] = max(1, math.ceil(min_time / elapsed))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn, n = candidates[name], number[name]
            synchronize(device)
            start = time.perf_counter()
            for _ in range(n):
                fn()
            synchronize(device)
            samples[name].append((time.perf_counter() - start) / n)
    return samples


def peak_memory(fn: Callable[[], object], device: str) -> int:
    """Bytes allocated by `fn` at its peak, above what was allocated before.

    CUDA: the caching allocator's own high-water mark. CPU: PyTorch keeps no
    such statistic, and the process's resident size mixes in the allocator's
    caching and other threads, so we record every allocation and free of the
    call with the profiler (profile_memory=True: one "[memory]" event per
    allocation, with +bytes, and per free, with -bytes) and take the maximum
    of the running sum. This counts tensor storage only, which is what the
    attention scores are.
    """
    fn()  # once outside: lazy initialisation is not the peak of a call
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    cpu = torch.autograd.DeviceType.CPU
    events = sorted(
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]" and event.device_type() == cpu
    )
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak


@dataclass
class Row:
    """One measurement of one candidate in one case."""

    bench: str
    case: str
    name: str
    seconds: float | None = None  # median seconds per call
    value: float | None = None  # throughput, bytes or FLOP/s, in `unit`
    unit: str = ""
    ratio: float | None = None  # baseline / this (time or memory): > 1 is better
    baseline: str = ""
    target: float | None = None  # minimum ratio, for the rows with a target
    status: str = ""  # PASS or MISS where there is a target
    samples: list[float] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class Settings:
    """What a run measures and how carefully."""

    device: str
    quick: bool
    repeats: int
    warmup: int
    min_time: float
    lengths: tuple[int, ...]  # T of the attention benchmark
    long_length: int  # T of the memory benchmark
    only: frozenset[str]


@dataclass(frozen=True)
class Precision:
    """float32, or bfloat16 on CUDA.

    Training steps use autocast (float32 weights, the usual mixed precision).
    Forward-only measurements cast weights and inputs instead, because
    nn.MultiheadAttention and nn.TransformerEncoder leave their fast path
    (the thing we compare against) whenever autocast is on.
    """

    name: str
    dtype: torch.dtype

    def autocast(self, device: str) -> contextlib.AbstractContextManager[Any]:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device, dtype=self.dtype)


FLOAT32 = Precision("float32", torch.float32)
BFLOAT16 = Precision("bfloat16", torch.bfloat16)


def compare(
    bench: str,
    case: str,
    candidates: dict[str, Callable[[], object]],
    settings: Settings,
    *,
    baseline: str,
    work: dict[str, float] | None = None,
    unit: str = "",
) -> list[Row]:
    """Time the candidates of one case; rows with the ratio to `baseline`.

    `work`, if given, maps a candidate to the amount of work of one call (for
    example tokens): the row's value is then work per second, in `unit`.
    """
    samples = measure_samples(
        candidates,
        settings.repeats,
        settings.warmup,
        device=settings.device,
        min_time=settings.min_time,
    )
    medians = {name: statistics.median(s) for name, s in samples.items()}
    rows = []
    for name, seconds in medians.items():
        amount = (work or {}).get(name)
        rows.append(
            Row(
                bench,
                case,
                name,
                seconds=seconds,
                value=None if amount is None else amount / seconds,
                unit=unit if amount is not None else "",
                ratio=medians[baseline] / seconds,
                baseline=baseline,
                samples=samples[name],
            )
        )
    return rows


def matmul_peak(bench: str, settings: Settings, precision: Precision) -> list[Row]:
    """The machine's matmul FLOP/s: one row, a large square product timed as
    the other cases are, its FLOP/s in `value` (the FLOP benchmarks' scale)."""
    size = 2048
    a = torch.randn(size, size, device=settings.device, dtype=precision.dtype)
    b = torch.randn(size, size, device=settings.device, dtype=precision.dtype)
    case = f"{size}x{size} matmul {precision.name}"
    rows = compare(bench, case, {"matmul": lambda: a @ b}, settings, baseline="matmul")
    seconds = rows[0].seconds
    assert seconds is not None
    rows[0].value, rows[0].unit = 2 * size**3 / seconds, "FLOP/s"
    return rows


def share_of_peak(
    bench: str, case: str, timed: Row, flops: float, peak: float, note: str
) -> Row:
    """A timed step's FLOP/s (`flops` per step) as a row, ratio = its share
    of the matmul peak of matmul_peak."""
    assert timed.seconds is not None
    achieved = flops / timed.seconds
    return Row(
        bench,
        case,
        timed.name,
        seconds=timed.seconds,
        value=achieved,
        unit="FLOP/s",
        ratio=achieved / peak,
        baseline="matmul peak",
        note=note,
    )


def forward_only(fn: Callable[[], Tensor]) -> Callable[[], object]:
    """A call of `fn` without autograd, as in inference."""

    def call() -> object:
        with torch.no_grad():
            return fn()

    return call


def forward_backward(
    fn: Callable[[], Tensor], inputs: list[Tensor]
) -> Callable[[], object]:
    """A call of `fn` and its backward to `inputs` with a fixed output gradient.

    torch.autograd.grad rather than .backward(): nothing accumulates in .grad,
    so every candidate does the same work at every call.
    """
    grad = fn().detach().normal_()

    def call() -> object:
        return torch.autograd.grad(fn(), inputs, grad)

    return call


def optimizer_step(
    model: nn.Module, loss: Callable[[], Tensor], precision: Precision, device: str
) -> Callable[[], object]:
    """An Adam step on a loss that is already a scalar (cf. `training_step`)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> object:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast(device):
            value = loss()
        value.backward()
        optimizer.step()
        return value

    return step


def training_step(
    model: nn.Module, forward: Callable[[], Tensor], precision: Precision, device: str
) -> Callable[[], object]:
    """forward, a loss on the output, backward, Adam step (fresh Adam per model)."""
    return optimizer_step(
        model, lambda: forward().float().square().mean(), precision, device
    )


def throughput_rows(rows: list[Row], tokens: dict[str, float]) -> list[Row]:
    """Add, to each timed row, a row of real tokens/s (the row keeps all tokens/s)."""
    out = []
    for row in rows:
        row.value, row.unit = tokens["all"] / row.seconds, "all tok/s"
        real = Row(row.bench, row.case, row.name, unit="real tok/s")
        real.value = tokens["real"] / row.seconds
        out += [row, real]
    return out
