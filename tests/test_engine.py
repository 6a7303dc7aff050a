"""The engine (literate_transformer/engine.py, explained on the Performance
page): its speed paths compute what the reference modules compute. Without
dropout, outputs and gradients equal the reference's; with dropout, one draw
serves the batch, lands on the right weights and keeps the expectation; the
language model's chunked loss is the logits' cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import literate_transformer.engine as engine_module
import literate_transformer.lm as lm_module
from literate_transformer.attention import KVCache, MultiHeadAttention, attention
from literate_transformer.engine import (
    Decoding,
    _attention_causal,
    attention_real,
    use_engine,
)
from literate_transformer.fast_dropout import FastDropout, keep_mask
from literate_transformer.lm import GPT2_DESIGN, LMConfig, TransformerLM
from literate_transformer.masks import attention_mask, padding_mask
from literate_transformer.model import Transformer
from literate_transformer.positional import RotaryEmbedding
from literate_transformer.train import fit


def small_model(**options) -> Transformer:
    torch.manual_seed(0)
    sizes = dict(
        d_model=32, num_heads=4, d_ff=64, dropout=0.0, max_len=16, share_vocab=True
    )
    return Transformer(20, 20, **{**sizes, **options}).eval()


@pytest.mark.parametrize("per_sequence_from", [128, 1])  # attention's two ways
@pytest.mark.parametrize("positional", ["sinusoidal", "rotary"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_real_tokens_only_equals_the_padded_path_forward_and_backward(
    norm_first, positional, per_sequence_from, device, monkeypatch
):
    monkeypatch.setattr(engine_module, "PER_SEQUENCE_FROM", per_sequence_from)
    model = small_model(norm_first=norm_first, positional=positional).to(device)
    src = torch.tensor([[5, 6, 7, 0, 0, 0], [8, 9, 10, 11, 12, 13], [4, 0, 0, 0, 0, 0]])
    src = src.to(device)
    mask = attention_mask(padding_mask(src))
    real = padding_mask(src)
    results = {}
    for on in (True, False):
        use_engine(model, on)
        model.zero_grad()
        out = model.encoder(src, mask)
        (out[real] ** 2).sum().backward()  # the padding feeds no later step
        grads = {n: p.grad.clone() for n, p in model.encoder.named_parameters()}
        results[on] = out[real].detach(), grads
    (real_only, real_grads), (padded, padded_grads) = results[True], results[False]
    torch.testing.assert_close(real_only, padded, atol=1e-5, rtol=1e-5)
    assert real_grads.keys() == padded_grads.keys()
    for name, grad in real_grads.items():
        torch.testing.assert_close(grad, padded_grads[name], atol=1e-4, rtol=1e-4)
    use_engine(model)
    out = model.encoder(src, mask)
    assert torch.equal(out[~real], torch.zeros_like(out[~real]))  # zeros at padding


@pytest.mark.parametrize("rotary", [False, True])
@pytest.mark.parametrize("fused", [True, False])
def test_attention_sequence_by_sequence_equals_the_padded_layout(
    rotary, fused, device, monkeypatch
):
    torch.manual_seed(0)
    rope = RotaryEmbedding(4) if rotary else None
    mha = MultiHeadAttention(16, 4, rotary=rope, fused=fused).to(device)
    tokens = [
        [0, 0, 3, 4, 5, 6],
        [1, 2, 3, 0, 0, 0],
        [0] * 6,
        [7] * 6,
        [8, 0, 0, 9, 9, 0],
    ]
    real = padding_mask(torch.tensor(tokens, device=device))  # padding anywhere
    mask = attention_mask(real)
    x = torch.randn(int(real.sum()), 16, device=device, requires_grad=True)
    results = {}
    for per_sequence_from in (6, 7):  # S = 6: sequence by sequence, then padded
        monkeypatch.setattr(engine_module, "PER_SEQUENCE_FROM", per_sequence_from)
        mha.zero_grad()
        x.grad = None
        out = attention_real(mha, x, real, mask)
        (out**2).sum().backward()
        grads = [x.grad.clone()] + [p.grad.clone() for p in mha.parameters()]
        results[per_sequence_from] = out.detach(), grads
    (by_sequence, by_grads), (padded, padded_grads) = results[6], results[7]
    torch.testing.assert_close(by_sequence, padded, atol=1e-5, rtol=1e-5)
    for grad, reference in zip(by_grads, padded_grads, strict=True):
        torch.testing.assert_close(grad, reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("rotary", [False, True])
def test_weight_dropout_sequence_by_sequence_applies_one_draw_to_each_sequence(
    rotary, monkeypatch
):
    """In training on the CPU, the per-sequence path drops the attention
    weights itself: one keep mask, drawn once for the weights of every
    sequence (sequence, head, query, key), scaled by 1 / (1 - p). The
    reference is the padded layout, step by step, with the same mask placed
    at each sequence's real positions."""
    torch.manual_seed(0)
    p, h = 0.25, 4
    rope = RotaryEmbedding(4) if rotary else None
    mha = MultiHeadAttention(16, h, dropout=p, rotary=rope).train()
    tokens = [[0, 0, 3, 4, 5, 6], [1, 2, 3, 0, 0, 0], [0] * 6, [8, 0, 0, 9, 9, 0]]
    real = padding_mask(torch.tensor(tokens))
    N, S = real.shape
    lengths = real.sum(dim=1).tolist()
    size = sum(h * length**2 for length in lengths)
    keep = torch.rand(size, generator=torch.Generator().manual_seed(1)) >= p
    calls = []

    def fixed_keep(shape, rate, scale, device=None, dtype=torch.float32):
        calls.append((shape, rate, scale))
        return keep.to(dtype) * scale

    monkeypatch.setattr(engine_module, "kept_scale", fixed_keep)
    monkeypatch.setattr(engine_module, "PER_SEQUENCE_FROM", S)
    x = torch.randn(int(real.sum()), 16, requires_grad=True)
    out = attention_real(mha, x, real, attention_mask(real))
    assert calls == [((size,), p, 1 / (1 - p))]  # one draw for the whole batch
    (out**2).sum().backward()
    grads = [x.grad.clone()] + [q.grad.clone() for q in mha.parameters()]

    kept = torch.zeros(N, h, S, S)  # the same draw, in the padded layout
    start = 0
    for n, length in enumerate(lengths):
        at = real[n].nonzero()[:, 0]
        block = keep[start : start + h * length**2].view(h, length, length)
        kept[n][:, at[:, None], at[None, :]] = block.float()
        start += h * length**2
    mha.zero_grad()
    x.grad = None
    padded = torch.zeros(N, S, 16).index_put((real,), x)
    q, k, v = (
        mha._split_heads(proj(padded)) for proj in (mha.q_proj, mha.k_proj, mha.v_proj)
    )
    if rotary:
        q, k = rope(q), rope(k)
    _, weights = attention(q, k, v, attention_mask(real))  # no dropout here
    heads = (weights * kept / (1 - p)) @ v  # (N, h, S, d_head)
    expected = mha.out_proj(heads.transpose(1, 2)[real].reshape(-1, 16))
    (expected**2).sum().backward()
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    reference = [x.grad] + [q.grad for q in mha.parameters()]
    for grad, wanted in zip(grads, reference, strict=True):
        torch.testing.assert_close(grad, wanted, atol=1e-4, rtol=1e-4)


def test_weight_dropout_sequence_by_sequence_keeps_the_expectation(monkeypatch):
    """Over many draws, the mean training output is the evaluation output:
    the weights' dropout preserves the expectation."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, dropout=0.5)
    real = padding_mask(torch.tensor([[1, 2, 3, 0], [0, 4, 5, 6], [7, 8, 9, 1]]))
    mask = attention_mask(real)
    x = torch.randn(int(real.sum()), 8)
    monkeypatch.setattr(engine_module, "PER_SEQUENCE_FROM", 4)
    draws = 4000
    with torch.no_grad():
        expected = attention_real(mha.eval(), x, real, mask)
        mha.train()
        outs = torch.stack([attention_real(mha, x, real, mask) for _ in range(draws)])
    spread = outs.std(dim=0)
    assert (spread > 1e-3).all()  # the weights were dropped, draw by draw
    error = (outs.mean(dim=0) - expected).abs()
    assert (error <= 5 * spread / draws**0.5).all(), (error / spread).max()


def dropouts(model: nn.Module) -> list[tuple[str, str, float, bool]]:
    return [
        (name, type(m).__name__, m.p, m.training)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Dropout, FastDropout))
    ]


@pytest.mark.parametrize("training", [True, False])
def test_the_switch_swaps_every_dropout_both_ways_and_keeps_the_weights(training):
    models = {
        "seq2seq": small_model(
            dropout=0.2, input_dropout=0.1, word_dropout=0.1, unk_id=3
        ),
        "lm": TransformerLM(30, d_model=16, num_heads=2, d_ff=32, dropout=0.3),
    }
    for model in models.values():
        model.train(training)
        before = dropouts(model)
        weights = {n: t.clone() for n, t in model.state_dict().items()}
        assert {kind for _, kind, _, _ in before} == {"Dropout"}
        assert use_engine(model) is model
        after = dropouts(model)
        kept = [(n, p, t) for n, _, p, t in after]
        assert kept == [(n, p, t) for n, _, p, t in before]  # same rates, modes
        assert {kind for _, kind, _, _ in after} == {"FastDropout"}
        flags = [m.engine for m in model.modules() if hasattr(m, "engine")]
        assert flags == [True]  # the Encoder's; the language model's (decoding)
        state = model.state_dict()
        assert state.keys() == weights.keys()
        assert all(torch.equal(state[n], t) for n, t in weights.items())
        use_engine(model, on=False)
        assert dropouts(model) == before
        assert not any(m.engine for m in model.modules() if hasattr(m, "engine"))


@pytest.mark.parametrize("norm_first", [False, True])
def test_a_whole_training_step_without_dropout_equals_the_reference(norm_first, device):
    """Logits, loss and every gradient of both models, engine on and off."""
    src = torch.tensor([[5, 6, 7, 0, 0, 0], [8, 9, 10, 11, 12, 13], [4, 0, 0, 0, 0, 0]])
    tgt = torch.tensor([[1, 5, 6, 0], [1, 8, 9, 10], [1, 4, 0, 0]])
    src, tgt = src.to(device), tgt.to(device)
    torch.manual_seed(0)
    lm = TransformerLM(20, d_model=32, num_heads=4, d_ff=64, dropout=0.0)
    cases = {
        "seq2seq": (small_model(norm_first=norm_first).train(), (src, tgt)),
        "lm": (lm.to(device).train(), (src,)),
    }
    for name, (model, inputs) in cases.items():
        model.to(device)
        results = []
        for on in (False, True):
            use_engine(model, on)
            model.zero_grad()
            logits = model(*inputs)
            keep = inputs[-1] != 0  # the loss's positions: no padding
            loss = logits[keep].logsumexp(dim=-1).sum()
            loss.backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters()}
            results.append((logits[keep].detach(), grads))
        (reference, reference_grads), (fast, fast_grads) = results
        torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5, msg=name)
        assert fast_grads.keys() == reference_grads.keys()
        for key, grad in fast_grads.items():
            torch.testing.assert_close(grad, reference_grads[key], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("tied", [True, False])  # untied: an output bias too
def test_the_language_models_loss_is_the_same_with_the_chunked_loss(tied, device):
    """model(ids, targets=...) gives the loss and gradients of the logits'
    cross-entropy, with the chunked loss and without, padding ignored."""
    torch.manual_seed(0)
    model = TransformerLM(
        50, d_model=16, num_heads=2, d_ff=32, dropout=0.0, tie_embeddings=tied
    ).to(device)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (3, 90), generator=generator)  # 270 rows: 3 blocks
    targets = torch.randint(1, 50, (3, 90), generator=generator)
    targets[1, 40:] = -100
    ids, targets = ids.to(device), targets.to(device)
    logits = model(ids)
    reference = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=-100
    )
    results = []
    for chunked in (False, True):
        use_engine(model, chunked_loss=chunked)
        assert model.chunked_loss is chunked
        model.zero_grad()
        loss = model(ids, targets=targets)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results.append((loss.detach(), grads))
    (plain, plain_grads), (fast, fast_grads) = results
    torch.testing.assert_close(plain, reference.detach())
    torch.testing.assert_close(fast, plain, atol=1e-6, rtol=1e-6)
    for key, grad in fast_grads.items():
        torch.testing.assert_close(grad, plain_grads[key], atol=1e-6, rtol=1e-5)


def test_the_training_loop_asks_a_language_model_for_its_own_loss(monkeypatch):
    """fit passes the targets to a forward that takes them, and the loss is
    the chunked one when the engine is on; with label smoothing, the logits'."""
    calls = []
    real = engine_module.linear_cross_entropy

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lm_module, "linear_cross_entropy", counted)
    corpus_ids = torch.randint(1, 40, (2, 500), generator=torch.Generator())

    def draw(generator):
        start = int(torch.randint(0, 400, (1,), generator=generator))
        window = corpus_ids[:, start : start + 17]
        return (window[:, :-1],), window[:, 1:]

    histories = []
    for smoothing in (0.0, 0.1):
        torch.manual_seed(0)
        model = use_engine(TransformerLM(40, d_model=16, num_heads=2, d_ff=32))
        calls.clear()
        histories.append(fit(model, draw, steps=3, label_smoothing=smoothing))
        assert len(calls) == (3 if smoothing == 0.0 else 0)
    assert all(math.isfinite(x) for h in histories for x in h.loss)


DESIGNS = {  # every branch of Decoding's step
    "gpt2": GPT2_DESIGN,
    "post-LN, padding": LMConfig(),
    "rotary, untied": LMConfig(positional="rotary", tie_embeddings=False),
    "concat, gelu": LMConfig(combine="concat", tie_embeddings=False, activation="gelu"),
    "no positions": LMConfig(positional="none", norm_first=True),
}


def decoding_model(design: LMConfig, device, max_len: int = 24) -> TransformerLM:
    torch.manual_seed(0)
    sizes = dict(d_model=16, num_heads=2, d_ff=32, num_layers=2, max_len=max_len)
    return TransformerLM(30, design, **sizes).to(device).eval()


@pytest.mark.parametrize("name", list(DESIGNS))
def test_decoding_gives_the_references_logits_at_every_step(name, device):
    """Decoding's logits after the prompt and after each later id equal the
    reference's cached path (_extend), padding in the prompt included."""
    model = decoding_model(DESIGNS[name], device)
    text = torch.randint(1, 30, (3, 24), generator=torch.Generator().manual_seed(1))
    if model.pad_id is not None:
        text[0, :5] = model.pad_id  # a prompt that starts with padding
        text[1, 3] = model.pad_id  # and one with padding inside
    text = text.to(device)
    decoding, caches = Decoding(model, 24), [KVCache() for _ in model.layers]
    with torch.no_grad():
        for t in range(6, 25):
            ours, theirs = decoding(text[:, :t]), model._extend(text[:, :t], caches)
            torch.testing.assert_close(ours, theirs[:, -1], atol=1e-5, rtol=1e-5)
    assert decoding.done == 24


@pytest.mark.parametrize("name", list(DESIGNS))
def test_generate_with_the_engine_decodes_the_same_ids_and_uses_decoding(
    name, device, monkeypatch
):
    """Greedy and seeded sampling give the same ids with the engine on and
    off, past max_len too (the window slides after the buffers are full);
    with the engine on, the cached steps are Decoding's."""
    model = decoding_model(DESIGNS[name], device, max_len=16)
    prompt = torch.randint(1, 30, (2, 4), generator=torch.Generator().manual_seed(2))
    prompt = prompt.to(device)

    def both() -> list[torch.Tensor]:
        sampler = torch.Generator(device=device).manual_seed(3)
        drawn = model.generate(prompt, 20, do_sample=True, generator=sampler)
        return [model.generate(prompt, 20), drawn]

    reference = both()
    calls = []
    real = Decoding.__call__

    def counted(self, ids):
        calls.append(ids.size(1))
        return real(self, ids)

    monkeypatch.setattr(Decoding, "__call__", counted)
    use_engine(model)
    assert model.engine and model.training is False
    for ours, theirs in zip(both(), reference, strict=True):
        assert torch.equal(ours, theirs)
    assert calls == list(range(4, 17)) * 2  # the cached steps, up to max_len


def test_decoding_refuses_calls_that_do_not_follow_on():
    model = decoding_model(GPT2_DESIGN, torch.device("cpu"))
    text = torch.randint(0, 30, (2, 12))
    decoding = Decoding(model, 10)
    with pytest.raises(ValueError, match="at most length=10"):
        decoding(text[:, :11])
    decoding(text[:, :5])
    for bad in (text[:, :5], text[:, :7], text[0, :6]):
        with pytest.raises(ValueError, match="ids: expected"):
            decoding(bad)
    decoding(text[:, :6])
    assert decoding.done == 6


@pytest.mark.parametrize("name", ["gpt2", "rotary", "post-LN"])
@pytest.mark.parametrize("training", [True, False])
def test_causal_attention_without_dropout_equals_the_reference(name, training, device):
    """The engine's causal layers: the same loss and gradients as the
    layers' own path, without dropout, in training and in evaluation."""
    designs = {
        "gpt2": GPT2_DESIGN,
        "rotary": LMConfig(positional="rotary", pad_id=None, norm_first=True),
        "post-LN": LMConfig(pad_id=None),
    }
    torch.manual_seed(0)
    sizes = dict(d_model=16, num_heads=2, d_ff=32, dropout=0.0)
    model = TransformerLM(40, designs[name], **sizes).to(device).train(training)
    ids = torch.randint(0, 40, (3, 20), device=device)
    targets = torch.randint(0, 40, (3, 20), device=device)
    results = []
    for on in (False, True):
        use_engine(model, chunked_loss=False, causal_attention=on)
        assert model.causal_attention is on
        model.zero_grad()
        loss = model(ids, targets=targets)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (plain, plain_grads), (fast, fast_grads) = results
    torch.testing.assert_close(fast, plain, atol=1e-6, rtol=1e-5)
    for ours, theirs in zip(fast_grads, plain_grads, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_causal_attention_with_a_padding_id_keeps_the_layers_own_path(monkeypatch):
    """A model with a padding id has a mask to apply: the causal layers
    are not taken, and its outputs stay the reference's."""
    calls = []
    monkeypatch.setattr(
        lm_module, "_causal_layers", lambda *args: calls.append(1) or args[1]
    )
    model = use_engine(TransformerLM(40, d_model=16, num_heads=2, d_ff=32)).eval()
    gpt = use_engine(TransformerLM(40, GPT2_DESIGN, d_model=16, num_heads=2, d_ff=32))
    ids = torch.randint(1, 40, (2, 10))
    model(ids)
    assert calls == []
    gpt.eval()(ids)
    assert calls == [1]


@pytest.mark.parametrize("rotary", [False, True])
def test_causal_attention_drops_weights_from_one_keep_mask_draw(rotary):
    """In training on a CPU, the weights of the causal softmax are dropped
    where one keep_mask draw says and the rest scaled by 1 / (1 - p)."""
    torch.manual_seed(0)
    p, N, T, d, h = 0.3, 2, 12, 16, 4
    rotation = RotaryEmbedding(d // h) if rotary else None
    mha = MultiHeadAttention(d, h, dropout=p, rotary=rotation).train()
    z = torch.randn(N, T, d)
    torch.manual_seed(5)
    out = _attention_causal(mha, z)
    torch.manual_seed(5)
    keep = keep_mask((N, h, T, T), p)
    q, k, v = (mha._split_heads(f(z)) for f in (mha.q_proj, mha.k_proj, mha.v_proj))
    if rotation is not None:
        q, k = rotation(q), rotation(k)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    scores = (q @ k.transpose(-2, -1) / (d // h) ** 0.5).masked_fill(future, -math.inf)
    kept = scores.softmax(dim=-1) * keep / (1 - p)
    expected = mha.out_proj((kept @ v).transpose(1, 2).reshape(N, T, d))
    torch.testing.assert_close(out, expected)
    mha.eval()
    torch.testing.assert_close(
        _attention_causal(mha, z), mha(z, is_causal=True)[0], atol=1e-6, rtol=1e-5
    )
