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

With --device cuda every benchmark runs in float32 and in bfloat16. The JSON
record (default benchmarks/out/bench-DEVICE-DATE.json) holds the machine, the
versions, the settings and every sample of every measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from literate_transformer.attention import MultiHeadAttention, attention
from literate_transformer.layers import (
    EncoderLayer,
    load_torch_attention,
    load_torch_layer,
)
from literate_transformer.lm import TransformerLM
from literate_transformer.masks import attention_mask, causal_mask
from literate_transformer.model import Transformer
from literate_transformer.packing import next_tokens, pack
from literate_transformer.positional import sinusoidal_encoding

# The reference size of the comparisons with torch.nn.
D_MODEL, HEADS, D_FF, LAYERS, BATCH, SEQ = 128, 4, 512, 2, 32, 128
DROPOUT, PAD_FRACTION, VOCAB = 0.1, 0.35, 1000
OURS, NN = "ours", "nn"
SDPA = "F.scaled_dot_product_attention"


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


def random_lengths(n: int, t: int, generator: torch.Generator) -> Tensor:
    """Lengths uniform in [t - 2 * PAD_FRACTION * t, t]: on average a fraction
    PAD_FRACTION of the positions are padding, and every sequence keeps at
    least 30% real tokens, so that no query is left without a key."""
    low = max(1, round(t * (1 - 2 * PAD_FRACTION)))
    return torch.randint(low, t + 1, (n,), generator=generator)


def real_positions(lengths: Tensor, t: int, device: str) -> Tensor:
    """bool (N, T), True at the real tokens, padding at the end of each row."""
    return (torch.arange(t)[None, :] < lengths[:, None]).to(device)


def random_ids(lengths: Tensor, t: int, generator: torch.Generator) -> Tensor:
    """Token ids (N, T) in [1, VOCAB), 0 (the padding id) after each length."""
    ids = torch.randint(1, VOCAB, (lengths.numel(), t), generator=generator)
    return ids.masked_fill(~real_positions(lengths, t, "cpu"), 0)


def set_fused(module: nn.Module, fused: bool) -> nn.Module:
    """Switch every MultiHeadAttention inside `module` to fused or explicit."""
    for sub in module.modules():
        if isinstance(sub, MultiHeadAttention):
            sub.fused = fused
    return module


# --------------------------------------------------------------------------
# 1. Attention
# --------------------------------------------------------------------------


@dataclass
class AttentionCase:
    """Inputs of one attention case, in both mask conventions."""

    x: Tensor  # (N, T, d_model)
    q: Tensor  # (N, h, T, d_head), for the kernels alone
    k: Tensor
    v: Tensor
    ours_mask: Tensor  # True = may attend, broadcastable to (N, h, T, T)
    nn_kwargs: dict[str, Any]  # key_padding_mask / attn_mask, True = ignore


def attention_case(
    n: int, t: int, mask: str, device: str, dtype: torch.dtype
) -> AttentionCase:
    """Random inputs and a padding or causal mask for N sequences of length T."""
    gen = torch.Generator().manual_seed(t)
    x = torch.randn(n, t, D_MODEL, generator=gen).to(device, dtype)
    q, k, v = (
        torch.randn(n, HEADS, t, D_MODEL // HEADS, generator=gen).to(device, dtype)
        for _ in range(3)
    )
    if mask == "padding":
        real = real_positions(random_lengths(n, t, gen), t, device)
        ours_mask = attention_mask(real)  # (N, 1, 1, T)
        nn_kwargs: dict[str, Any] = {"key_padding_mask": ~real}
    else:
        ours_mask = attention_mask(causal=True, size=t).to(device)  # (1, 1, T, T)
        # is_causal is nn's documented hint: with no padding mask it lets
        # nn.MultiheadAttention ask scaled_dot_product_attention for its causal
        # kernel. Ours has no such option and passes the (T, T) mask.
        nn_kwargs = {"attn_mask": ~causal_mask(t, device=device), "is_causal": True}
    return AttentionCase(x, q, k, v, ours_mask, nn_kwargs)


def attention_modules(
    device: str, dtype: torch.dtype
) -> tuple[MultiHeadAttention, MultiHeadAttention, nn.MultiheadAttention]:
    """Ours explicit, ours fused and nn's attention, all with the same weights.

    No dropout: the benchmark compares the attention computations, and on CPU
    any dropout sends scaled_dot_product_attention to its unfused math path.
    """
    theirs = nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True)
    fused = MultiHeadAttention(D_MODEL, HEADS)
    load_torch_attention(fused, theirs)
    explicit = set_fused(copy.deepcopy(fused), False)
    assert isinstance(explicit, MultiHeadAttention)
    return (
        explicit.to(device, dtype),
        fused.to(device, dtype),
        theirs.to(device, dtype),
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


def bench_attention(settings: Settings, precision: Precision) -> list[Row]:
    """Attention at several lengths: modules (with projections) and kernels."""
    device, dtype = settings.device, precision.dtype
    explicit, fused, theirs = attention_modules(device, dtype)
    rows = []
    for t in settings.lengths:
        # 32 x 4 heads x 1024^2 scores is 0.5 GiB per float32 copy, and the
        # explicit backward keeps several: a smaller batch at long lengths.
        n = BATCH if t <= 256 else 8
        for mask in ("padding", "causal"):
            case = attention_case(n, t, mask, device, dtype)
            for mode in ("fwd", "fwd+bwd"):
                label = f"T={t} N={n} {mask} {mode} {precision.name}"
                rows += compare(
                    "attention",
                    f"{label} [module]",
                    module_candidates(case, mode, explicit, fused, theirs),
                    settings,
                    baseline="ours MHA explicit",
                )
                rows += compare(
                    "attention",
                    f"{label} [kernel]",
                    kernel_candidates(case, mode),
                    settings,
                    baseline="attention() explicit",
                )
    return rows


def module_candidates(
    case: AttentionCase,
    mode: str,
    explicit: MultiHeadAttention,
    fused: MultiHeadAttention,
    theirs: nn.MultiheadAttention,
) -> dict[str, Callable[[], object]]:
    """Self-attention of x with projections: ours both ways, and nn's."""
    x, mask = case.x, case.ours_mask

    def ours(module: MultiHeadAttention) -> Callable[[], Tensor]:
        return lambda: module(x, mask=mask)[0]

    def nn_mha() -> Tensor:
        # need_weights=False: otherwise nn computes the weights explicitly.
        return theirs(x, x, x, need_weights=False, **case.nn_kwargs)[0]

    fns = {
        "ours MHA explicit": ours(explicit),
        "ours MHA fused": ours(fused),
        "nn.MultiheadAttention": nn_mha,
    }
    if mode == "fwd":
        for module in (explicit, fused, theirs):
            module.eval()  # nn's fast path needs eval mode and no grad
        return {name: forward_only(fn) for name, fn in fns.items()}
    for module in (explicit, fused, theirs):
        module.train()
    x.requires_grad_(True)
    return {
        name: forward_backward(fn, [x, *module.parameters()])
        for (name, fn), module in zip(
            fns.items(), (explicit, fused, theirs), strict=True
        )
    }


def kernel_candidates(
    case: AttentionCase, mode: str
) -> dict[str, Callable[[], object]]:
    """Attention of given q, k, v (N, h, T, d_head): no projections, no heads."""
    q, k, v, mask = case.q, case.k, case.v, case.ours_mask
    fns: dict[str, Callable[[], Tensor]] = {
        "attention() explicit": lambda: attention(q, k, v, mask)[0],
        # What MultiHeadAttention.fused calls (it also zeroes the rows of
        # queries that have no key, a masked_fill outside the kernel).
        SDPA: lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
    }
    if mode == "fwd":
        return {name: forward_only(fn) for name, fn in fns.items()}
    for tensor in (q, k, v):
        tensor.requires_grad_(True)
    return {name: forward_backward(fn, [q, k, v]) for name, fn in fns.items()}


# --------------------------------------------------------------------------
# 2, 3. Encoder stack: training step and inference
# --------------------------------------------------------------------------


class EncoderStack(nn.Module):
    """Our EncoderLayers applied in turn, on embeddings: (N, T, d_model) -> same.

    The package's Encoder starts from token ids; nn.TransformerEncoder starts
    from vectors. Both are compared on the same vectors, without embeddings.
    """

    def __init__(self, layers: list[EncoderLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, real: Tensor) -> Tensor:
        """x (N, T, d_model), real bool (N, T) True at real tokens."""
        mask = attention_mask(real)  # (N, 1, 1, T): built in the call, as nn does
        for layer in self.layers:
            x = layer(x, mask)
        return x


@dataclass
class EncoderPair:
    """Our stack and nn's, with the same weights, and a batch for them."""

    ours: EncoderStack
    theirs: nn.TransformerEncoder
    theirs_dense: nn.TransformerEncoder  # enable_nested_tensor=False
    x: Tensor  # (N, T, d_model)
    real: Tensor  # bool (N, T)
    tokens: dict[str, float]  # real and all tokens of the batch


def encoder_pair(device: str) -> EncoderPair:
    """Both encoders at the reference size: post-LN, relu, dropout 0.1."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        D_MODEL, HEADS, D_FF, DROPOUT, activation="relu", batch_first=True
    )
    with warnings.catch_warnings():  # nn warns about nested tensors it won't use
        warnings.simplefilter("ignore")
        theirs = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=True)
        dense = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
    dense.load_state_dict(theirs.state_dict())
    ours = EncoderStack(
        [EncoderLayer(D_MODEL, HEADS, D_FF, DROPOUT) for _ in range(LAYERS)]
    )
    for mine, other in zip(ours.layers, theirs.layers, strict=True):
        load_torch_layer(mine, other)
    gen = torch.Generator().manual_seed(1)
    lengths = random_lengths(BATCH, SEQ, gen)
    x = torch.randn(BATCH, SEQ, D_MODEL, generator=gen)
    tokens = {"real": float(lengths.sum()), "all": float(BATCH * SEQ)}
    return EncoderPair(
        ours.to(device),
        theirs.to(device),
        dense.to(device),
        x.to(device),
        real_positions(lengths, SEQ, device),
        tokens,
    )


def training_step(
    model: nn.Module, forward: Callable[[], Tensor], precision: Precision, device: str
) -> Callable[[], object]:
    """forward, a loss on the output, backward, Adam step (fresh Adam per model)."""
    return seq2seq_step(
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


def bench_encoder_train(settings: Settings, precision: Precision) -> list[Row]:
    """Training step of our encoder stack vs nn.TransformerEncoder."""
    device = settings.device
    pair = encoder_pair(device)
    x, real, pad = pair.x, pair.real, ~pair.real
    ours, theirs = pair.ours.train(), pair.theirs.train()
    candidates = {
        OURS: training_step(ours, lambda: ours(x, real), precision, device),
        NN: training_step(
            theirs, lambda: theirs(x, src_key_padding_mask=pad), precision, device
        ),
    }
    if not settings.quick:  # how much the fused path buys in training
        explicit = set_fused(copy.deepcopy(ours), False)
        candidates[f"{OURS} (explicit attention)"] = training_step(
            explicit, lambda: explicit(x, real), precision, device
        )
    case = f"N={BATCH} T={SEQ} {PAD_FRACTION:.0%} pad {precision.name}"
    rows = compare("encoder-train", case, candidates, settings, baseline=NN)
    return throughput_rows(rows, pair.tokens)


def bench_encoder_infer(settings: Settings, precision: Precision) -> list[Row]:
    """Eval + no_grad forward of our stack vs nn's fast path (nested or not)."""
    device, dtype = settings.device, precision.dtype
    pair = encoder_pair(device)
    x, real, pad = pair.x.to(dtype), pair.real, ~pair.real
    ours = pair.ours.to(dtype).eval()
    theirs, dense = pair.theirs.to(dtype).eval(), pair.theirs_dense.to(dtype).eval()
    candidates = {
        OURS: forward_only(lambda: ours(x, real)),
        # nn's default: the fast path packs the real tokens in a nested tensor.
        NN: forward_only(lambda: theirs(x, src_key_padding_mask=pad)),
        f"{NN} (no nested tensor)": forward_only(
            lambda: dense(x, src_key_padding_mask=pad)
        ),
    }
    case = f"N={BATCH} T={SEQ} {PAD_FRACTION:.0%} pad {precision.name}"
    rows = compare("encoder-infer", case, candidates, settings, baseline=NN)
    return throughput_rows(rows, pair.tokens)


# --------------------------------------------------------------------------
# 4. Encoder-decoder training step
# --------------------------------------------------------------------------


class TorchSeq2Seq(nn.Module):
    """nn.Transformer with what ours has around it: scaled token embeddings,
    sinusoidal positions, dropout on the sum, output projection tied to the
    target embedding. Token ids in, logits out, padding id 0."""

    def __init__(self, vocab: int, max_len: int) -> None:
        super().__init__()
        self.src_embed = nn.Embedding(vocab, D_MODEL, padding_idx=0)
        self.tgt_embed = nn.Embedding(vocab, D_MODEL, padding_idx=0)
        self.register_buffer("pe", sinusoidal_encoding(max_len, D_MODEL))
        self.dropout = nn.Dropout(DROPOUT)
        self.transformer = nn.Transformer(
            D_MODEL, HEADS, LAYERS, LAYERS, D_FF, DROPOUT, batch_first=True
        )
        self.output = nn.Linear(D_MODEL, vocab, bias=False)
        self.output.weight = self.tgt_embed.weight

    def embed(self, embedding: nn.Embedding, ids: Tensor) -> Tensor:
        pe = self.pe[: ids.size(1)]
        return self.dropout(embedding(ids) * math.sqrt(D_MODEL) + pe)

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        src_pad, tgt_pad = src == 0, tgt == 0  # True = ignore, nn's convention
        # bool like the padding masks (nn warns on mixed types), True = ignore
        causal = ~causal_mask(tgt.size(1), device=tgt.device)
        y = self.transformer(
            self.embed(self.src_embed, src),
            self.embed(self.tgt_embed, tgt),
            tgt_mask=causal,
            src_key_padding_mask=src_pad,
            tgt_key_padding_mask=tgt_pad,
            memory_key_padding_mask=src_pad,
            tgt_is_causal=True,
        )
        return self.output(y)


def bench_seq2seq_train(settings: Settings, precision: Precision) -> list[Row]:
    """Training step of Transformer vs nn.Transformer, cross-entropy on logits."""
    device = settings.device
    torch.manual_seed(0)
    ours = Transformer(
        VOCAB,
        VOCAB,
        d_model=D_MODEL,
        num_heads=HEADS,
        num_encoder_layers=LAYERS,
        num_decoder_layers=LAYERS,
        d_ff=D_FF,
        dropout=DROPOUT,
        max_len=SEQ,
    ).to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = TorchSeq2Seq(VOCAB, SEQ).to(device)
    gen = torch.Generator().manual_seed(2)
    src_len, tgt_len = random_lengths(BATCH, SEQ, gen), random_lengths(BATCH, SEQ, gen)
    src = random_ids(src_len, SEQ, gen).to(device)
    tgt = random_ids(tgt_len, SEQ, gen).to(device)

    def loss_of(model: nn.Module) -> Callable[[], Tensor]:
        def loss() -> Tensor:
            logits = model(src, tgt).float()  # (N, T, V)
            # ids as their own labels: the work of a shifted target, same shapes
            return F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=0)

        return loss

    candidates = {
        name: seq2seq_step(model, loss_of(model), precision, device)
        for name, model in ((OURS, ours.train()), (NN, theirs.train()))
    }
    case = f"N={BATCH} S=T={SEQ} V={VOCAB} {PAD_FRACTION:.0%} pad {precision.name}"
    rows = compare("seq2seq-train", case, candidates, settings, baseline=NN)
    tokens = {
        "real": float(src_len.sum() + tgt_len.sum()),
        "all": float(2 * BATCH * SEQ),
    }
    return throughput_rows(rows, tokens)


def seq2seq_step(
    model: nn.Module, loss: Callable[[], Tensor], precision: Precision, device: str
) -> Callable[[], object]:
    """Adam step on a loss that is already a scalar (cf. `training_step`)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> object:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast(device):
            value = loss()
        value.backward()
        optimizer.step()
        return value

    return step


# --------------------------------------------------------------------------
# Packing: the language model on packed rows vs one document per row
# --------------------------------------------------------------------------

PACKED, PADDED = "packed (document mask)", "padded (one document per row)"


def bench_packing(settings: Settings, precision: Precision) -> list[Row]:
    """Training step of TransformerLM on the same documents, one per row or
    packed with a document mask; throughput in real tokens per second."""
    device = settings.device
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(SEQ // 8, SEQ + 1, (BATCH,), generator=generator)
    documents = [
        torch.randint(3, VOCAB, (int(n),), generator=generator) for n in lengths
    ]
    torch.manual_seed(0)
    model = (
        TransformerLM(
            VOCAB,
            d_model=D_MODEL,
            num_heads=HEADS,
            num_layers=LAYERS,
            d_ff=D_FF,
            dropout=DROPOUT,
            max_len=SEQ,
        )
        .to(device)
        .train()
    )
    candidates, rows_of = {}, {}
    for name, one_per_row in ((PADDED, True), (PACKED, False)):
        ids, labels = pack(documents, SEQ, one_per_row=one_per_row)
        ids, labels = ids.to(device), labels.to(device)
        targets = next_tokens(ids, labels).flatten()
        rows_of[name] = len(ids)

        def loss(
            ids: Tensor = ids, labels: Tensor = labels, targets: Tensor = targets
        ) -> Tensor:
            logits = model(ids, labels)  # (N, T, VOCAB)
            return F.cross_entropy(logits.flatten(0, 1).float(), targets)

        candidates[name] = seq2seq_step(model, loss, precision, device)
    real = float(lengths.sum())
    case = (
        f"{BATCH} documents of {SEQ // 8}-{SEQ} tokens, T={SEQ}: "
        f"{rows_of[PADDED]} rows padded, {rows_of[PACKED]} packed, {precision.name}"
    )
    rows = compare(
        "packing",
        case,
        candidates,
        settings,
        baseline=PADDED,
        work={PADDED: real, PACKED: real},
        unit="real tok/s",
    )
    return rows


# --------------------------------------------------------------------------
# 5. Achieved FLOP/s
# --------------------------------------------------------------------------


def encoder_train_flops(n: int, t: int, d: int, d_ff: int, layers: int) -> float:
    """Matmul FLOPs of one encoder training step (a multiply-add is 2 FLOPs).

    Forward of one layer, counting every position, padding included (dense
    kernels compute it), and only the matmuls:
        Q, K, V and output projections   4 * 2*n*t*d^2
        scores Q K^T and weights @ V     2 * 2*n*t^2*d   (all heads: h*d_head = d)
        feed-forward, two linears        2 * 2*n*t*d*d_ff
    Layer norm, softmax, dropout and residuals are O(n*t*d) or O(n*h*t^2)
    elementwise work, left out. The backward of a matmul is two matmuls of
    the same size (gradients of the input and of the weight), so a training
    step is ~3x the forward: 3 * layers * (8ntd^2 + 4nt^2d + 4ntd*d_ff).
    """
    forward = 8 * n * t * d * d + 4 * n * t * t * d + 4 * n * t * d * d_ff
    return 3.0 * layers * forward


def bench_flops(
    settings: Settings, precision: Precision, previous: list[Row]
) -> list[Row]:
    """Matmul FLOP/s of the machine, and the encoder steps' share of it."""
    device, dtype = settings.device, precision.dtype
    size = 2048
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    case = f"{size}x{size} matmul {precision.name}"
    rows = compare(
        "flops", case, {"matmul": lambda: a @ b}, settings, baseline="matmul"
    )
    peak = 2 * size**3 / rows[0].seconds
    rows[0].value, rows[0].unit = peak, "FLOP/s"
    flops = encoder_train_flops(BATCH, SEQ, D_MODEL, D_FF, LAYERS)
    train = [
        r
        for r in previous
        if r.bench == "encoder-train" and r.seconds and precision.name in r.case
    ]
    if not train:  # run alone (--only flops): time the training step here
        train = bench_encoder_train(settings, precision)
        train = [r for r in train if r.seconds]
    for r in train:
        achieved = flops / r.seconds
        rows.append(
            Row(
                "flops",
                f"encoder train step {precision.name}",
                r.name,
                seconds=r.seconds,
                value=achieved,
                unit="FLOP/s",
                ratio=achieved / peak,
                baseline="matmul peak",
                note=f"{flops:.3g} FLOPs per step; ratio = fraction of matmul",
            )
        )
    return rows


# --------------------------------------------------------------------------
# 6. Peak memory of attention at long T
# --------------------------------------------------------------------------


def bench_memory(settings: Settings, precision: Precision) -> list[Row]:
    """Peak bytes of one attention call at long T, explicit vs fused vs nn."""
    device, dtype, t, n = settings.device, precision.dtype, settings.long_length, 4
    explicit, fused, theirs = attention_modules(device, dtype)
    case = attention_case(n, t, "padding", device, dtype)
    rows = []
    for mode in ("fwd", "fwd+bwd"):
        fns = module_candidates(case, mode, explicit, fused, theirs)
        peaks = {name: peak_memory(fn, device) for name, fn in fns.items()}
        base = peaks["ours MHA explicit"]
        for name, nbytes in peaks.items():
            rows.append(
                Row(
                    "memory",
                    f"T={t} N={n} padding {mode} {precision.name}",
                    name,
                    value=float(nbytes),
                    unit="bytes",
                    ratio=base / nbytes if nbytes else None,
                    baseline="ours MHA explicit",
                )
            )
    return rows


# --------------------------------------------------------------------------
# Targets, table, record
# --------------------------------------------------------------------------

# (bench, words in the case, candidate, minimum ratio to the case's baseline)
TARGETS = [
    ("encoder-train", "float32", OURS, 1.1),  # vs nn.TransformerEncoder
    ("encoder-infer", "float32", OURS, 1.2),  # vs nn's fast path (nested)
    ("attention", "T=256 N=32 padding fwd float32 [module]", "ours MHA fused", 4.0),
    ("attention", "T=256 N=32 causal fwd float32 [module]", "ours MHA fused", 4.0),
    ("attention", "T=256 N=32 padding fwd float32 [kernel]", SDPA, 4.0),
    ("attention", "T=256 N=32 causal fwd float32 [kernel]", SDPA, 4.0),
]


def apply_targets(rows: list[Row]) -> None:
    """Mark PASS or MISS on the timed rows that have a target."""
    for bench, case, name, minimum in TARGETS:
        for row in rows:
            if (row.bench, row.name) != (bench, name) or case not in row.case:
                continue
            if row.seconds is None or row.ratio is None:
                continue  # the real-token throughput line of a timed row
            row.target = minimum
            row.status = "PASS" if row.ratio >= minimum else "MISS"


def format_value(value: float | None, unit: str) -> str:
    """Human units: MiB for bytes, G for FLOP/s, k for tokens/s."""
    if value is None:
        return ""
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    if unit == "FLOP/s":
        return f"{value / 1e9:.1f} GFLOP/s"
    return f"{value / 1e3:.1f}k {unit}"


def print_table(rows: list[Row]) -> None:
    """One line per row; the case is printed once, above its candidates."""
    head = f"{'candidate':<32} {'ms/call':>9} {'value':>22} {'ratio':>7}  target"
    print(head)
    print("-" * len(head))
    last = None
    for row in rows:
        if (row.bench, row.case) != last:
            print(f"[{row.bench}] {row.case}   (ratio: baseline {row.baseline} / x)")
            last = (row.bench, row.case)
        ms = f"{row.seconds * 1e3:9.2f}" if row.seconds is not None else " " * 9
        ratio = f"{row.ratio:7.2f}" if row.ratio is not None else " " * 7
        target = f">={row.target:.1f}x {row.status}" if row.status else ""
        value = format_value(row.value, row.unit)
        print(f"  {row.name:<30} {ms} {value:>22} {ratio}  {target}")
    targeted = [r for r in rows if r.status]
    if targeted:
        print("\nTargets:")
        for r in targeted:
            print(
                f"  {r.status}  {r.bench} {r.case}: {r.name} {r.ratio:.2f}x "
                f"(>= {r.target:.1f}x vs {r.baseline})"
            )


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


BENCHES = (
    "attention",
    "encoder-train",
    "encoder-infer",
    "seq2seq-train",
    "flops",
    "memory",
    "packing",
)


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
                if name == "flops":
                    rows = bench_flops(settings, precision, done)
                else:
                    rows = BENCH_FUNCTIONS[name](settings, precision)
            except Exception:
                yield label, traceback.format_exc()
                continue
            done += rows
            yield label, rows


BENCH_FUNCTIONS: dict[str, Callable[[Settings, Precision], list[Row]]] = {
    "attention": bench_attention,
    "encoder-train": bench_encoder_train,
    "encoder-infer": bench_encoder_infer,
    "seq2seq-train": bench_seq2seq_train,
    "memory": bench_memory,
    "packing": bench_packing,
}


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
