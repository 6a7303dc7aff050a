"""The cases: what each benchmark builds and times, against torch.nn (the
list of benchmarks, and what each compares, is in bench.py's docstring)."""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import literate_transformer.engine as engine_module
from benchmarks.measure import (
    Precision,
    Row,
    Settings,
    compare,
    forward_backward,
    forward_only,
    matmul_peak,
    optimizer_step,
    peak_memory,
    share_of_peak,
    throughput_rows,
    training_step,
)
from benchmarks.peers import PEER_BENCHES, PEER_TARGETS, bench_lm_flops
from literate_transformer.attention import MultiHeadAttention, attention
from literate_transformer.engine import _encode_real, attention_real, use_engine
from literate_transformer.fast_dropout import FastDropout
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
PADDINGS = (0.0, PAD_FRACTION, 0.6)  # the encoder's cases: no, some, much padding
OURS, NN = "ours", "nn"
SDPA = "F.scaled_dot_product_attention"


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


def random_lengths(
    n: int, t: int, generator: torch.Generator, pad_fraction: float = PAD_FRACTION
) -> Tensor:
    """n lengths evenly spread around (1 - pad_fraction) * t, as widely as fits
    in [1, t], in random order: a fraction pad_fraction of the batch's positions
    are padding (at 35%, lengths from 30% to all of t; evenly spread rather than
    drawn, so that the batch has the padding its case is named after), and every
    sequence keeps at least one real token, so that no query is left without a
    key."""
    mean = (1 - pad_fraction) * t
    spread = min(mean, t - mean)
    low = max(1, round(mean - spread))
    high = max(low, round(mean + spread))
    lengths = torch.linspace(low, high, n).round().long()
    return lengths[torch.randperm(n, generator=generator)]


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
# Attention
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
# Encoder stack: training step and inference
# --------------------------------------------------------------------------


class EncoderStack(nn.Module):
    """Our EncoderLayers applied in turn, on embeddings: (N, T, d_model) -> same.

    The package's Encoder starts from token ids; nn.TransformerEncoder starts
    from vectors. Both are compared on the same vectors, without embeddings.
    Built with the engine on, as the package's Encoder runs with it.
    """

    def __init__(self, layers: list[EncoderLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.engine = False  # use_engine: the real tokens gathered once
        use_engine(self)

    def forward(self, x: Tensor, real: Tensor) -> Tensor:
        """x (N, T, d_model), real bool (N, T) True at real tokens; with the
        engine, as the package's Encoder, the real tokens are gathered once
        for every layer (zeros at the padding, as nn's nested tensors give)."""
        mask = attention_mask(real)  # (N, 1, 1, T): built in the call, as nn does
        if self.engine:
            out = _encode_real(self.layers, nn.Identity(), x, mask)
            if out is not None:
                return out
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
    lengths: list[int]  # real tokens of each sequence
    tokens: dict[str, float]  # real and all tokens of the batch


def encoder_pair(device: str, pad_fraction: float = PAD_FRACTION) -> EncoderPair:
    """Both encoders at the reference size: post-LN, relu, dropout 0.1, and a
    batch with `pad_fraction` of padding on average."""
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
    lengths = random_lengths(BATCH, SEQ, gen, pad_fraction)
    x = torch.randn(BATCH, SEQ, D_MODEL, generator=gen)
    tokens = {"real": float(lengths.sum()), "all": float(BATCH * SEQ)}
    return EncoderPair(
        ours.to(device),
        theirs.to(device),
        dense.to(device),
        x.to(device),
        real_positions(lengths, SEQ, device),
        lengths.tolist(),
        tokens,
    )


def encoder_case(pair: EncoderPair, precision: Precision) -> str:
    """The case's name: sizes, measured padding, precision ("... 35% pad ...")."""
    padding = 1 - pair.tokens["real"] / pair.tokens["all"]
    return f"N={BATCH} T={SEQ} {padding:.0%} pad {precision.name}"


EncoderCase = Callable[[EncoderPair, Settings, Precision], list[Row]]


def at_each_padding(
    case: EncoderCase, settings: Settings, precision: Precision
) -> list[Row]:
    """The rows of `case` for a batch with each amount of padding of PADDINGS."""
    rows = []
    for pad_fraction in PADDINGS:
        rows += case(encoder_pair(settings.device, pad_fraction), settings, precision)
    return rows


def bench_encoder_train(settings: Settings, precision: Precision) -> list[Row]:
    """Training step of our encoder stack vs nn.TransformerEncoder."""
    return at_each_padding(encoder_train_case, settings, precision)


def encoder_train_case(
    pair: EncoderPair, settings: Settings, precision: Precision
) -> list[Row]:
    device = settings.device
    x, real, pad = pair.x, pair.real, ~pair.real
    ours, theirs = pair.ours.train(), pair.theirs.train()
    candidates = {
        OURS: training_step(ours, lambda: ours(x, real), precision, device),
        NN: training_step(
            theirs, lambda: theirs(x, src_key_padding_mask=pad), precision, device
        ),
    }
    # How much the fused path buys in training. (On a CPU with dropout, from
    # T = PER_SEQUENCE_FROM on, both take the same steps: the heads drop
    # their weights themselves, sequence by sequence, fused or not.)
    if not settings.quick:
        explicit = set_fused(copy.deepcopy(ours), False)
        candidates[f"{OURS} (explicit attention)"] = training_step(
            explicit, lambda: explicit(x, real), precision, device
        )
    case = encoder_case(pair, precision)
    rows = compare("encoder-train", case, candidates, settings, baseline=NN)
    return throughput_rows(rows, pair.tokens)


def bench_encoder_infer(settings: Settings, precision: Precision) -> list[Row]:
    """Eval + no_grad forward of our stack vs nn's fast path (nested or not)."""
    return at_each_padding(encoder_infer_case, settings, precision)


def encoder_infer_case(
    pair: EncoderPair, settings: Settings, precision: Precision
) -> list[Row]:
    dtype = precision.dtype
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
    case = encoder_case(pair, precision)
    rows = compare("encoder-infer", case, candidates, settings, baseline=NN)
    return throughput_rows(rows, pair.tokens)


# --------------------------------------------------------------------------
# Encoder-decoder training step
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


def reference_transformer(max_len: int) -> Transformer:
    """Our Transformer at the reference size, initialised from seed 0."""
    torch.manual_seed(0)
    model = Transformer(
        VOCAB,
        VOCAB,
        d_model=D_MODEL,
        num_heads=HEADS,
        num_encoder_layers=LAYERS,
        num_decoder_layers=LAYERS,
        d_ff=D_FF,
        dropout=DROPOUT,
        max_len=max_len,
    )
    return use_engine(model)


def bench_seq2seq_train(settings: Settings, precision: Precision) -> list[Row]:
    """Training step of Transformer vs nn.Transformer, cross-entropy on logits."""
    device = settings.device
    ours = reference_transformer(SEQ).to(device)
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
        name: optimizer_step(model, loss_of(model), precision, device)
        for name, model in ((OURS, ours.train()), (NN, theirs.train()))
    }
    case = f"N={BATCH} S=T={SEQ} V={VOCAB} {PAD_FRACTION:.0%} pad {precision.name}"
    rows = compare("seq2seq-train", case, candidates, settings, baseline=NN)
    tokens = {
        "real": float(src_len.sum() + tgt_len.sum()),
        "all": float(2 * BATCH * SEQ),
    }
    return throughput_rows(rows, tokens)


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
        use_engine(
            TransformerLM(
                VOCAB,
                d_model=D_MODEL,
                num_heads=HEADS,
                num_layers=LAYERS,
                d_ff=D_FF,
                dropout=DROPOUT,
                max_len=SEQ,
            )
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

        candidates[name] = optimizer_step(model, loss, precision, device)
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
# Achieved FLOP/s
# --------------------------------------------------------------------------


def encoder_train_flops(
    lengths: Sequence[int], d: int, d_ff: int, layers: int
) -> float:
    """Matmul FLOPs of one encoder training step on the real tokens of
    sequences of these lengths (a multiply-add is 2 FLOPs): the work that is
    needed, whatever a padded batch also computes on its padding.

    Forward of one layer, for R = sum(lengths) real tokens and P = sum(L^2)
    pairs of a real query and a real key of the same sequence, matmuls only:
        Q, K, V and output projections   4 * 2*R*d^2
        scores Q K^T and weights @ V     2 * 2*P*d   (all heads: h*d_head = d)
        feed-forward, two linears        2 * 2*R*d*d_ff
    Layer norm, softmax, dropout and residuals are O(R*d) or O(h*P)
    elementwise work, left out. The backward of a matmul is two matmuls of
    the same size (gradients of the input and of the weight), so a training
    step is 3x the forward: 3 * layers * (8Rd^2 + 4Pd + 4Rd*d_ff).
    tests/test_bench.py checks it against torch.utils.flop_counter.
    """
    real = sum(lengths)
    pairs = sum(n * n for n in lengths)
    forward = 8 * real * d * d + 4 * pairs * d + 4 * real * d * d_ff
    return 3.0 * layers * forward


def bench_flops(
    settings: Settings, precision: Precision, previous: list[Row]
) -> list[Row]:
    """Matmul FLOP/s of the machine, and the encoder steps' share of it: the
    FLOPs of their real tokens (at PAD_FRACTION) per second."""
    rows = matmul_peak("flops", settings, precision)
    peak = rows[0].value
    assert peak is not None
    pair = encoder_pair(settings.device)  # its batch: the lengths of the case
    flops = encoder_train_flops(pair.lengths, D_MODEL, D_FF, LAYERS)
    case = encoder_case(pair, precision)
    train = [
        r
        for r in previous
        if (r.bench, r.case) == ("encoder-train", case) and r.seconds
    ]
    if not train:  # run alone (--only flops): time the training step here
        train = [r for r in encoder_train_case(pair, settings, precision) if r.seconds]
    note = f"{flops:.3g} real-token FLOPs per step ({case}); ratio = fraction of matmul"
    step = f"encoder train step {precision.name}"
    rows += [share_of_peak("flops", step, r, flops, peak, note) for r in train]
    return rows


# --------------------------------------------------------------------------
# Dropout: nn.Dropout's Bernoulli draw vs fifteen random bits per coordinate
# --------------------------------------------------------------------------


def bench_dropout(settings: Settings, precision: Precision) -> list[Row]:
    """Forward and backward of dropout at the model's rate on a feed-forward
    block's activations, (N, T, d_ff) at the reference size."""
    device, dtype = settings.device, precision.dtype
    x = torch.randn(BATCH, SEQ, D_FF, device=device, dtype=dtype, requires_grad=True)
    modules = {"nn.Dropout": nn.Dropout(DROPOUT), OURS: FastDropout(DROPOUT)}
    candidates = {
        f"{name} fwd+bwd": forward_backward(partial(module, x), [x])
        for name, module in modules.items()
    }
    case = f"p={DROPOUT} on ({BATCH}, {SEQ}, {D_FF}) {precision.name}"
    return compare("dropout", case, candidates, settings, baseline="nn.Dropout fwd+bwd")


# --------------------------------------------------------------------------
# Attention over the real rows: in the padded layout, or sequence by sequence
# --------------------------------------------------------------------------

VARLEN_LENGTHS = (32, 64, 128, 256)  # T of the padded batch
PADDED_LAYOUT, PER_SEQUENCE = "padded layout", "per sequence"


def attend_real(
    mha: MultiHeadAttention,
    x: Tensor,
    real: Tensor,
    mask: Tensor,
    per_sequence_from: int,
) -> Tensor:
    """attention_real with engine.PER_SEQUENCE_FROM set as asked."""
    engine_module.PER_SEQUENCE_FROM = per_sequence_from
    return attention_real(mha, x, real, mask)


def bench_varlen(settings: Settings, precision: Precision) -> list[Row]:
    """The engine's attention_real in inference on a batch with 35%
    padding: the heads in the padded (N, h, T, T) layout against one call a
    sequence over its own real positions (the switch is
    engine.PER_SEQUENCE_FROM, set here per candidate and put back)."""
    device, dtype = settings.device, precision.dtype
    generator = torch.Generator().manual_seed(0)
    mha = MultiHeadAttention(D_MODEL, HEADS).to(device, dtype).eval()
    saved = engine_module.PER_SEQUENCE_FROM
    rows = []
    try:
        for t in VARLEN_LENGTHS:
            real = real_positions(random_lengths(BATCH, t, generator), t, device)
            mask = attention_mask(real)
            x = torch.randn(int(real.sum()), D_MODEL, generator=generator)
            x = x.to(device, dtype)

            candidates = {
                name: forward_only(
                    partial(attend_real, mha, x, real, mask, per_sequence_from)
                )
                for name, per_sequence_from in (
                    (PADDED_LAYOUT, t + 1),
                    (PER_SEQUENCE, t),
                )
            }
            case = f"T={t} N={BATCH} 35% pad fwd {precision.name}"
            rows += compare(
                "varlen", case, candidates, settings, baseline=PADDED_LAYOUT
            )
    finally:
        engine_module.PER_SEQUENCE_FROM = saved
    return rows


# --------------------------------------------------------------------------
# Greedy decoding: keys and values cached, or the prefix rerun
# --------------------------------------------------------------------------

DECODE_LENGTHS = (32, 128, 256)  # generated tokens
DECODE_BATCHES = (BATCH, 1)  # the reference batch, and a single sequence
CACHED, RERUN = "cache", "recompute"
BOS_ID, EOS_ID = 1, 2


def decode_model(device: str, max_len: int) -> Transformer:
    """An untrained Transformer at the reference size that never ends early:
    the end token's row of the (tied) output projection is zero, so its logit
    is 0 while the largest of the others is positive."""
    model = reference_transformer(max_len)
    with torch.no_grad():
        model.decoder.output.weight[EOS_ID] = 0.0
    return model.to(device).eval()


def bench_decode(settings: Settings, precision: Precision) -> list[Row]:
    """greedy_decode of 32, 128 and 256 tokens, with the cache and without,
    for the reference batch (sources of SEQ tokens) and for one sequence.

    Rerunning the prefix of 256 tokens for 32 sequences takes about half a
    minute on 2 cores, so these cases take five repeats after one warm-up."""
    device, dtype = settings.device, precision.dtype
    model = decode_model(device, max(DECODE_LENGTHS)).to(dtype)
    generator = torch.Generator().manual_seed(0)
    sources = torch.randint(3, VOCAB, (BATCH, SEQ), generator=generator).to(device)
    fewer = dataclasses.replace(
        settings, repeats=min(settings.repeats, 5), warmup=min(settings.warmup, 1)
    )
    rows = []
    for n in DECODE_BATCHES:
        src = sources[:n]
        for length in DECODE_LENGTHS:
            options = dict(bos_id=BOS_ID, eos_id=EOS_ID, max_len=length)
            out = model.greedy_decode(src, **options)
            if out.shape != (n, length):
                raise RuntimeError(f"decoding ended early: {tuple(out.shape)}")
            candidates = {
                name: partial(model.greedy_decode, src, cache=cache, **options)
                for name, cache in ((CACHED, True), (RERUN, False))
            }
            tokens = float(n * length)
            rows += compare(
                "decode",
                f"{length} tokens, N={n} S={SEQ} {precision.name}",
                candidates,
                fewer,
                baseline=RERUN,
                work={CACHED: tokens, RERUN: tokens},
                unit="tok/s",
            )
    return rows


# --------------------------------------------------------------------------
# Peak memory of attention at long T
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


# The peers first: a language model's step depends on the state the earlier
# benchmarks leave the memory allocator in (glibc's thresholds for taking
# large blocks from the heap instead of fresh pages). First, in a fresh
# process, they are measured in the state a training run starts from.
BENCHES = (
    *PEER_BENCHES,  # TransformerLM against transformers' GPT-2 and nanoGPT
    "lm-flops",
    "attention",
    "encoder-train",
    "encoder-infer",
    "seq2seq-train",
    "flops",
    "memory",
    "packing",
    "dropout",
    "varlen",
    "decode",
)


BENCH_FUNCTIONS: dict[str, Callable[[Settings, Precision], list[Row]]] = {
    "attention": bench_attention,
    "encoder-train": bench_encoder_train,
    "encoder-infer": bench_encoder_infer,
    "seq2seq-train": bench_seq2seq_train,
    "memory": bench_memory,
    "packing": bench_packing,
    "dropout": bench_dropout,
    "varlen": bench_varlen,
    "decode": bench_decode,
    **PEER_BENCHES,
}


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------

TARGETS = [
    ("encoder-train", "35% pad float32", OURS, 1.3),  # vs nn.TransformerEncoder
    ("encoder-train", " 0% pad float32", OURS, 1.0),  # no padding: no loss
    ("encoder-infer", "35% pad float32", OURS, 1.3),  # vs nn's fast path (nested)
    ("flops", "encoder train step float32", OURS, 0.4),  # share of matmul FLOP/s
    ("decode", f"128 tokens, N={BATCH} ", CACHED, 4.0),  # vs rerunning the prefix
    ("attention", "T=256 N=32 padding fwd float32 [module]", "ours MHA fused", 4.0),
    ("attention", "T=256 N=32 causal fwd float32 [module]", "ours MHA fused", 4.0),
    ("attention", "T=256 N=32 padding fwd float32 [kernel]", SDPA, 4.0),
    ("attention", "T=256 N=32 causal fwd float32 [kernel]", SDPA, 4.0),
    *PEER_TARGETS,
]


# The benchmarks that read the rows of those before them (a training step's
# time, to turn into FLOP/s): they time it themselves when run alone.
AFTER_OTHERS = {"flops": bench_flops, "lm-flops": bench_lm_flops}


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
