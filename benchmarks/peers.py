"""The peers: TransformerLM configured as GPT-2 against the small language
models people pick today, transformers' GPT2LMHeadModel (scaled dot-product
attention) and a nanoGPT-style model written here.

All three are built with the same weights (transformers' GPT-2 is initialised
from a seed, the other two load its state dict), so that they compute the
same function: setup checks that their logits agree in evaluation and that
greedy decoding gives the same ids. They are compared at two sizes, the lm
page's (d_model 64) and twice as wide, on batches of LM_BATCH windows of
LM_SEQ tokens of a vocabulary of BPE_SIZE ids (the documentation corpus's),
with dropout 0.1 everywhere GPT-2 has it (input, attention weights, the two
residual branches):

    lm-train    forward, cross-entropy, backward, gradient clipping to norm 1,
                AdamW step (weight decay 0.1 on the matrices, as nanoGPT;
                PyTorch's fused kernel for all three, as nanoGPT takes it
                where PyTorch has it)
    lm-eval     evaluation forward and loss, no gradients
    lm-decode   greedy decoding of LM_NEW tokens after LM_PROMPT, at batch
                1 and LM_BATCH: ours and transformers' with their key/value
                caches; the nanoGPT-style model has none and reruns the prefix
    lm-run      a whole training run of LM_RUN_STEPS steps at the lm page's
                size, from a fresh copy of the weights and a fresh optimiser,
                warm-up (and any compilation) included
    lm-flops    the training steps' FLOP/s as a share of a large matmul's,
                and our step's matrix products alone (a floor under its time)

The nanoGPT-style reference runs eagerly, as nanoGPT's train.py does with
compile=False; ratios are the reference's time over ours (> 1: ours faster).
Each model computes its loss its own way: ours with the engine's chunked
loss (the Performance page), the others from their logits.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
from collections.abc import Callable
from functools import partial
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.measure import (
    Precision,
    Row,
    Settings,
    compare,
    forward_only,
    matmul_peak,
    share_of_peak,
)
from literate_transformer.engine import LOSS_ROWS, use_engine
from literate_transformer.lm import load_gpt2
from literate_transformer.text import BPE_SIZE

LM_SIZES = {  # name -> (d_model, num_heads, num_layers, d_ff)
    "d_model=64": (64, 4, 2, 256),  # the lm page's LM_BASE
    "d_model=128": (128, 4, 2, 512),
}
LM_VOCAB, LM_BATCH, LM_SEQ, LM_DROPOUT = BPE_SIZE, 32, 64, 0.1
LM_PROMPT, LM_NEW = 16, 128  # decoding: prompt tokens, generated tokens
LM_MAX_LEN = 256  # positions: room for the prompt and the generated tokens
LM_RUN_STEPS, LM_RUN_STEPS_QUICK = 400, 50
OURS, HF, NANO = "ours", "HF GPT-2 (sdpa)", "nanoGPT-style"


# --------------------------------------------------------------------------
# The nanoGPT-style reference
# --------------------------------------------------------------------------


class NanoBlock(nn.Module):
    """One pre-LN block as nanoGPT writes it: one linear for q, k and v,
    scaled_dot_product_attention with is_causal=True, a GELU (tanh) MLP."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.ln_1, self.ln_2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)
        self.c_fc = nn.Linear(d_model, d_ff)
        self.mlp_proj = nn.Linear(d_ff, d_model)
        self.resid = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(n, t, self.num_heads, -1).transpose(1, 2) for z in (q, k, v))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        x = x + self.resid(self.c_proj(y.transpose(1, 2).reshape(n, t, d)))
        hidden = F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")
        return x + self.resid(self.mlp_proj(hidden))


class NanoGPT(nn.Module):
    """Token and position tables, dropout, the blocks, a final LayerNorm and
    an output layer tied to the token table, without bias."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        num_heads: int,
        num_layers: int,
        d_ff: int,
        max_len: int,
        dropout: float,
    ):
        super().__init__()
        self.max_len = max_len
        self.wte = nn.Embedding(vocab_size, d_model)
        self.wpe = nn.Embedding(max_len, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            NanoBlock(d_model, num_heads, d_ff, dropout) for _ in range(num_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.size(1), device=ids.device)
        x = self.drop(self.wte(ids) + self.wpe(positions))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    @torch.no_grad()
    def greedy(self, prompt: Tensor, new_tokens: int) -> Tensor:
        """nanoGPT's generate with top-1: the whole prefix again at each step."""
        ids = prompt
        for _ in range(new_tokens):
            logits = self(ids[:, -self.max_len :])[:, -1]
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
        return ids


def load_nano(model: NanoGPT, state: dict[str, Tensor]) -> NanoGPT:
    """GPT-2's weights (transformers' layout: Conv1D stores x @ W, so its
    matrices are the transposes of nn.Linear's) into the reference."""
    found = {key.removeprefix("transformer."): value for key, value in state.items()}
    names = {"wte": "wte", "wpe": "wpe", "ln_f": "ln_f"}
    mine: dict[str, Tensor] = {}
    for ours, theirs in names.items():
        for part in ("weight", "bias"):
            if f"{theirs}.{part}" in found:
                mine[f"{ours}.{part}"] = found[f"{theirs}.{part}"]
    layers = {
        "ln_1": "ln_1",
        "ln_2": "ln_2",
        "c_attn": "attn.c_attn",
        "c_proj": "attn.c_proj",
        "c_fc": "mlp.c_fc",
        "mlp_proj": "mlp.c_proj",
    }
    for i in range(len(model.blocks)):
        for ours, theirs in layers.items():
            weight = found[f"h.{i}.{theirs}.weight"]
            mine[f"blocks.{i}.{ours}.weight"] = weight if "ln" in ours else weight.T
            mine[f"blocks.{i}.{ours}.bias"] = found[f"h.{i}.{theirs}.bias"]
    mine["lm_head.weight"] = mine["wte.weight"]
    model.load_state_dict(mine)
    return model


# --------------------------------------------------------------------------
# transformers' GPT-2
# --------------------------------------------------------------------------


class HFLM(nn.Module):
    """transformers' GPT2LMHeadModel (sdpa attention), ids in, logits out."""

    def __init__(self, d_model: int, num_heads: int, num_layers: int, d_ff: int):
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel  # bench-only

        config = GPT2Config(
            vocab_size=LM_VOCAB,
            n_positions=LM_MAX_LEN,
            n_embd=d_model,
            n_head=num_heads,
            n_layer=num_layers,
            n_inner=d_ff,
            resid_pdrop=LM_DROPOUT,
            embd_pdrop=LM_DROPOUT,
            attn_pdrop=LM_DROPOUT,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=0,
            attn_implementation="sdpa",
        )
        self.gpt2 = GPT2LMHeadModel(config)

    def forward(self, ids: Tensor) -> Tensor:
        return self.gpt2(ids, use_cache=False).logits

    @torch.no_grad()
    def greedy(self, prompt: Tensor, new_tokens: int) -> Tensor:
        """generate(): greedy, with its key/value cache, exactly new_tokens."""
        return self.gpt2.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            use_cache=True,
        )


# --------------------------------------------------------------------------
# The three models, with the same weights
# --------------------------------------------------------------------------


def lm_peers(size: str, device: str) -> dict[str, nn.Module]:
    """Ours (GPT2_DESIGN, engine on), transformers' GPT-2 and the
    nanoGPT-style model at `size`, all with the weights of a GPT-2
    initialised from seed 0; checked to give the same logits in evaluation."""
    d_model, num_heads, num_layers, d_ff = LM_SIZES[size]
    torch.manual_seed(0)
    hf = HFLM(d_model, num_heads, num_layers, d_ff)
    state = hf.gpt2.state_dict()
    ours = use_engine(load_gpt2(state, num_heads=num_heads, dropout=LM_DROPOUT))
    nano = NanoGPT(
        LM_VOCAB, d_model, num_heads, num_layers, d_ff, LM_MAX_LEN, LM_DROPOUT
    )
    load_nano(nano, state)
    models: dict[str, nn.Module] = {OURS: ours, HF: hf, NANO: nano}
    check_same_function(size, models)
    return {name: m.to(device) for name, m in models.items()}


def check_same_function(size: str, models: dict[str, nn.Module]) -> None:
    """Raise unless the peers' logits agree with ours in evaluation."""
    ids = torch.randint(0, LM_VOCAB, (2, LM_SEQ), generator=torch.Generator())
    with torch.no_grad():
        logits = {name: m.eval()(ids) for name, m in models.items()}
    for name in models:
        if not torch.allclose(logits[name], logits[OURS], atol=1e-4, rtol=1e-4):
            gap = (logits[name] - logits[OURS]).abs().max().item()
            raise RuntimeError(f"{size}: {name} and ours differ by {gap:.2e}")


def windows(n: int, device: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n random windows of LM_SEQ ids and their next ids."""
    ids = torch.randint(0, LM_VOCAB, (n, LM_SEQ + 1), generator=generator)
    ids = ids.to(device)
    return ids[:, :-1], ids[:, 1:]


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    """nanoGPT's AdamW: weight decay on the matrices and tables only, one
    fused kernel for all the parameters (on a CPU faster than the default
    foreach kernels; nanoGPT takes it where PyTorch has it)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), fused=True)


def lm_loss(model: nn.Module, ids: Tensor, targets: Tensor) -> Tensor:
    """The mean cross-entropy: the model's own where its forward takes the
    targets (as the package's training loop asks it: ours, with the engine's
    chunked loss), else from its logits."""
    if "targets" in inspect.signature(model.forward).parameters:
        return cast(Tensor, model(ids, targets=targets))
    logits = model(ids)  # (N, T, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


def lm_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    precision: Precision,
    device: str,
    ids: Tensor,
    targets: Tensor,
) -> Tensor:
    """One training step as nanoGPT's loop takes it (without accumulation)."""
    with precision.autocast(device):
        loss = lm_loss(model, ids, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss


def versus(rows: list[Row], name: str, other: str) -> list[Row]:
    """A row of `name` against another candidate of the same case than the
    baseline: ratio = other's median time over name's."""
    found = {r.name: r for r in rows if r.seconds is not None}
    mine, theirs = found[name], found[other]
    assert mine.seconds is not None and theirs.seconds is not None
    return [
        *rows,
        Row(
            mine.bench,
            mine.case,
            f"{name} vs {other}",
            seconds=mine.seconds,
            value=mine.value,
            unit=mine.unit,
            ratio=theirs.seconds / mine.seconds,
            baseline=other,
            samples=mine.samples,
        ),
    ]


# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------


def bench_lm_train(settings: Settings, precision: Precision) -> list[Row]:
    """Training step of the three, at both sizes; baseline the reference."""

    def step(model: nn.Module, ids: Tensor, targets: Tensor) -> Callable[[], object]:
        model.train()
        return partial(
            lm_step, model, adamw(model), precision, settings.device, ids, targets
        )

    return at_both_sizes("lm-train", step, settings, precision)


def bench_lm_eval(settings: Settings, precision: Precision) -> list[Row]:
    """Evaluation forward and loss of the three, at both sizes."""

    def forward(model: nn.Module, ids: Tensor, targets: Tensor) -> Callable[[], object]:
        return forward_only(partial(lm_loss, model.eval(), ids, targets))

    return at_both_sizes("lm-eval", forward, settings, precision)


def at_both_sizes(
    bench: str,
    candidate: Callable[[nn.Module, Tensor, Tensor], Callable[[], object]],
    settings: Settings,
    precision: Precision,
) -> list[Row]:
    """candidate(model, ids, targets) for each peer on one batch, at each of
    LM_SIZES; ratios to the reference, and ours against transformers'."""
    rows = []
    tokens = float(LM_BATCH * LM_SEQ)
    for size in LM_SIZES:
        models = lm_peers(size, settings.device)
        generator = torch.Generator().manual_seed(1)
        ids, targets = windows(LM_BATCH, settings.device, generator)
        candidates = {name: candidate(m, ids, targets) for name, m in models.items()}
        case = f"{size} N={LM_BATCH} T={LM_SEQ} V={LM_VOCAB} {precision.name}"
        found = compare(
            bench,
            case,
            candidates,
            settings,
            baseline=NANO,
            work=dict.fromkeys(candidates, tokens),
            unit="tok/s",
        )
        rows += versus(found, OURS, HF)
    return rows


def bench_lm_decode(settings: Settings, precision: Precision) -> list[Row]:
    """Greedy decoding of LM_NEW tokens at batch 1 and LM_BATCH, both sizes;
    baseline transformers' GPT-2 with its cache. Setup checks that the three
    decode the same ids."""
    device, rows = settings.device, []
    fewer = dataclasses.replace(
        settings, repeats=min(settings.repeats, 5), warmup=min(settings.warmup, 1)
    )
    for size in LM_SIZES:
        models = lm_peers(size, device)
        ours, hf, nano = models[OURS], models[HF], models[NANO]
        assert isinstance(hf, HFLM) and isinstance(nano, NanoGPT)
        for n in (1, LM_BATCH):
            generator = torch.Generator().manual_seed(2)
            prompt = torch.randint(3, LM_VOCAB, (n, LM_PROMPT), generator=generator)
            prompt = prompt.to(device)
            decoders: dict[str, Callable[[], Tensor]] = {
                OURS: partial(ours.generate, prompt, LM_NEW),  # type: ignore[operator]
                HF: partial(hf.greedy, prompt, LM_NEW),
                f"{NANO} (no cache)": partial(nano.greedy, prompt, LM_NEW),
            }
            outs = {name: decode() for name, decode in decoders.items()}
            for name, out in outs.items():
                if out.shape != (n, LM_PROMPT + LM_NEW):
                    raise RuntimeError(f"{name} decoded {tuple(out.shape)}")
            same = [torch.equal(out, outs[OURS]) for out in outs.values()]
            case = f"{size} {LM_NEW} tokens, N={n} {precision.name}"
            tokens = float(n * LM_NEW)
            found = compare(
                "lm-decode",
                case,
                decoders,
                fewer,
                baseline=HF,
                work=dict.fromkeys(decoders, tokens),
                unit="tok/s",
            )
            if not all(same):  # near-ties of untrained logits may break apart
                for row in found:
                    row.note = "the decoders' ids differ (ties of untrained logits)"
            rows += found
    return rows


def bench_lm_run(settings: Settings, precision: Precision) -> list[Row]:
    """A whole training run at the lm page's size: a fresh copy of the
    weights, a fresh AdamW, LM_RUN_STEPS steps on fixed random batches;
    every sample includes the first steps' warm-up."""
    device = settings.device
    steps = LM_RUN_STEPS_QUICK if settings.quick else LM_RUN_STEPS
    size = next(iter(LM_SIZES))
    models = lm_peers(size, device)
    batches = [
        windows(LM_BATCH, device, torch.Generator().manual_seed(100 + i))
        for i in range(8)
    ]

    def run(initial: nn.Module) -> Tensor:
        model = copy.deepcopy(initial).train()
        optimizer = adamw(model)
        loss = torch.zeros(())
        for step in range(steps):
            ids, targets = batches[step % len(batches)]
            loss = lm_step(model, optimizer, precision, device, ids, targets)
        if not math.isfinite(loss.item()):
            raise RuntimeError("the training run diverged")
        return loss

    candidates = {name: partial(run, m) for name, m in models.items()}
    whole = dataclasses.replace(settings, repeats=min(settings.repeats, 3), warmup=0)
    tokens = float(steps * LM_BATCH * LM_SEQ)
    case = f"{size} {steps} steps, N={LM_BATCH} T={LM_SEQ} {precision.name}"
    return compare(
        "lm-run",
        case,
        candidates,
        whole,
        baseline=NANO,
        work=dict.fromkeys(candidates, tokens),
        unit="tok/s",
    )


def lm_train_flops(
    n: int, t: int, d: int, d_ff: int, layers: int, vocab: int, *, causal: bool = True
) -> float:
    """Matmul FLOPs of one training step of a GPT-style model on n windows of
    t tokens (a multiply-add is 2 FLOPs): the work that is needed.

    Forward, for R = n * t tokens and P query-key pairs that the causal mask
    keeps (n * t * (t + 1) / 2; with causal=False every pair, n * t^2, which
    is what an attention kernel without a causal shortcut computes):
        per layer: Q, K, V and output projections   8 * R * d^2
                   scores and weights @ V           4 * P * d
                   feed-forward                     4 * R * d * d_ff
        output layer (tied or not)                  2 * R * d * vocab
    The token and position tables are looked up, not multiplied. A training
    step is 3x the forward, as in cases.encoder_train_flops.
    """
    tokens = n * t
    pairs = n * t * (t + 1) // 2 if causal else n * t * t
    layer = 8 * tokens * d * d + 4 * pairs * d + 4 * tokens * d * d_ff
    return 3.0 * (layers * layer + 2 * tokens * d * vocab)


PRODUCTS = f"{OURS}: products alone"


def step_products(size: str, device: str, dtype: torch.dtype) -> Callable[[], None]:
    """The matrix products of our training step at `size`, alone, on random
    numbers of the step's shapes: per layer the four projections forward
    and their two gradients each, attention's two batched products and
    their four gradients; the output layer's three products per block of
    LOSS_ROWS rows (linear_cross_entropy). Their time is a floor under the
    step's: with every other operation free, its FLOP/s would be theirs."""
    d, h, layers, d_ff = LM_SIZES[size]
    rows, heads = LM_BATCH * LM_SEQ, LM_BATCH * h

    def new(*shape: int) -> Tensor:
        return torch.randn(*shape, device=device, dtype=dtype)

    x, inner = new(rows, d), new(rows, d_ff)
    linears = [(d, 3 * d), (d, d), (d, d_ff), (d_ff, d)]  # (in, out)
    weights = [(new(o, i), new(o), new(rows, o)) for i, o in linears]
    q, k, v = (new(heads, LM_SEQ, d // h) for _ in range(3))
    scores, future = new(heads, LM_SEQ, LM_SEQ), new(LM_SEQ, LM_SEQ)
    table, logits = new(LM_VOCAB, d), new(LOSS_ROWS, LM_VOCAB)
    grad_hidden, grad_table = new(rows, d), new(LM_VOCAB, d)

    def products() -> None:
        for _ in range(layers):
            for (weight, bias, grad), a in zip(weights, (x, x, x, inner), strict=True):
                torch.addmm(bias, a, weight.T)  # forward
                grad.mm(weight)  # the input's gradient
                grad.T.mm(a)  # the weight's
            torch.baddbmm(future, q, k.transpose(1, 2))  # the scores
            torch.bmm(scores, v)  # the weights applied
            torch.bmm(scores.transpose(1, 2), v)  # the values' gradient
            torch.bmm(v, k.transpose(1, 2))  # the weights'
            torch.bmm(scores, k)  # the queries'
            torch.bmm(scores.transpose(1, 2), q)  # the keys'
        for start in range(0, rows, LOSS_ROWS):
            block = x[start : start + LOSS_ROWS]
            torch.mm(block, table.T, out=logits)
            torch.mm(logits, table, out=grad_hidden[start : start + LOSS_ROWS])
            grad_table.addmm_(logits.T, block)

    return products


def bench_lm_flops(
    settings: Settings, precision: Precision, previous: list[Row]
) -> list[Row]:
    """The training steps' FLOP/s (lm_train_flops, causal pairs only) as a
    share of the machine's matmul FLOP/s, measured in this run; and the
    same for our step's products alone (step_products), the share that the
    step would reach if nothing else took time."""
    rows = matmul_peak("lm-flops", settings, precision)
    peak = rows[0].value
    assert peak is not None
    train = [r for r in previous if r.bench == "lm-train" and r.seconds]
    if not train:  # run alone (--only lm-flops): time the training steps here
        train = [r for r in bench_lm_train(settings, precision) if r.seconds]
    for r in train:
        if " vs " in r.name:
            continue
        size_name = r.case.split()[0]
        d, _, layers, d_ff = LM_SIZES[size_name]
        flops = lm_train_flops(LM_BATCH, LM_SEQ, d, d_ff, layers, LM_VOCAB)
        note = f"{flops:.3g} FLOPs per step ({r.case}); ratio = share of matmul"
        step = f"{size_name} train step {precision.name}"
        rows.append(share_of_peak("lm-flops", step, r, flops, peak, note))
        if r.name != OURS:
            continue
        products = step_products(size_name, settings.device, precision.dtype)
        timed = compare(
            "lm-flops", step, {PRODUCTS: products}, settings, baseline=PRODUCTS
        )[0]
        floor = f"{note}; the step's matrix products alone, on random numbers"
        rows.append(share_of_peak("lm-flops", step, timed, flops, peak, floor))
    return rows


PEER_BENCHES: dict[str, Callable[[Settings, Precision], list[Row]]] = {
    "lm-train": bench_lm_train,
    "lm-eval": bench_lm_eval,
    "lm-decode": bench_lm_decode,
    "lm-run": bench_lm_run,
}

PEER_TARGETS = [
    ("lm-train", "d_model=64 ", OURS, 1.3),  # vs the nanoGPT-style reference
    ("lm-train", "d_model=128 ", OURS, 1.3),
    ("lm-train", "d_model=64 ", f"{OURS} vs {HF}", 1.5),
    ("lm-train", "d_model=128 ", f"{OURS} vs {HF}", 1.5),
    ("lm-run", "d_model=64 ", OURS, 1.3),
    ("lm-decode", "tokens, N=1 ", OURS, 3.0),  # vs transformers' cached generate
    ("lm-decode", f"tokens, N={LM_BATCH} ", OURS, 1.5),
    ("lm-flops", "d_model=64 train step", OURS, 0.5),  # share of matmul FLOP/s
    ("lm-flops", "d_model=128 train step", OURS, 0.5),
]
