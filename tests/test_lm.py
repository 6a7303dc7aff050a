"""TransformerLM: causal, padding-invariant, the same function as PyTorch's
encoder under a causal mask, tied, and strict about its arguments."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from literate_transformer.layers import load_torch_layer
from literate_transformer.lm import GPT2_DESIGN, TransformerLM, evaluate_lm, train_lm
from literate_transformer.masks import causal_mask
from literate_transformer.text import EOD, load_corpus

POSITIONALS = ["sinusoidal", "learned", "none", "rotary"]


def small(**options) -> TransformerLM:
    torch.manual_seed(0)
    base = dict(d_model=16, num_heads=2, d_ff=32, dropout=0.0, max_len=12)
    return TransformerLM(30, **{**base, **options}).eval()


@settings(max_examples=25, deadline=None)
@given(
    positional=st.sampled_from(POSITIONALS),
    norm_first=st.booleans(),
    length=st.integers(2, 12),
    data=st.data(),
)
def test_the_output_at_t_never_depends_on_later_tokens(
    positional, norm_first, length, data
):
    lm = small(positional=positional, norm_first=norm_first)
    t = data.draw(st.integers(0, length - 2))
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 1000)))
    ids = torch.randint(1, 30, (2, length), generator=generator)
    later = ids.clone()
    later[:, t + 1 :] = torch.randint(1, 30, (2, length - t - 1), generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(lm(ids)[:, : t + 1], lm(later)[:, : t + 1])


@pytest.mark.parametrize("positional", POSITIONALS)
def test_padding_changes_no_real_position(positional):
    lm = small(positional=positional)
    ids = torch.tensor([[5, 6, 7, 8, 0, 0], [9, 10, 11, 12, 13, 14]])
    with torch.no_grad():
        batch = lm(ids)
        alone = lm(ids[:1, :4])
    torch.testing.assert_close(batch[:1, :4], alone)


@pytest.mark.parametrize("norm_first", [False, True])
def test_the_layers_compute_what_torchs_encoder_computes_under_a_causal_mask(
    norm_first,
):
    lm = small(norm_first=norm_first, num_layers=2)
    layer = nn.TransformerEncoderLayer(
        16, 2, 32, dropout=0.0, batch_first=True, norm_first=norm_first
    )
    theirs = nn.TransformerEncoder(
        layer,
        num_layers=2,
        norm=nn.LayerNorm(16) if norm_first else None,
        enable_nested_tensor=False,
    ).eval()
    for ours, torch_layer in zip(lm.layers, theirs.layers, strict=True):
        load_torch_layer(ours, torch_layer)
    if norm_first:
        lm.norm.load_state_dict(theirs.norm.state_dict())
    ids = torch.randint(1, 30, (3, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = lm.embedding(ids)
        expected = theirs(x, mask=~causal_mask(9), is_causal=True)
        got = lm(ids)
    torch.testing.assert_close(got, lm.output(expected), atol=1e-5, rtol=1e-5)


def test_the_output_projection_is_the_token_embedding():
    lm = small()
    assert lm.output.weight is lm.embedding.token.weight
    untied = small(tie_embeddings=False, combine="concat")
    assert untied.output.weight is not untied.embedding.token.weight
    with pytest.raises(ValueError, match="tie_embeddings"):
        small(combine="concat")


def test_activation_dropout_sets_the_feed_forward_rate_alone():
    lm = small(dropout=0.1, activation_dropout=0.0)
    for layer in lm.layers:
        assert layer.ff.dropout.p == 0.0 and layer.dropout1.p == 0.1
    assert layer.self_attn.dropout == 0.1 and lm.embedding.dropout.p == 0.1
    assert small(dropout=0.1).layers[0].ff.dropout.p == 0.1  # None: the rate
    assert GPT2_DESIGN.activation_dropout == 0.0  # GPT-2 has none there


def test_the_output_has_a_bias_only_when_untied_unless_asked():
    assert small().output.bias is None  # tied: GPT-2's way
    assert small(tie_embeddings=False).output.bias is not None
    assert small(output_bias=True).output.bias is not None  # the site's LM_BASE
    assert small(tie_embeddings=False, output_bias=False).output.bias is None
    assert small().config.output_bias is None  # the rule, not a fixed value


def test_generation_is_greedy_unless_asked_to_sample_and_never_pads():
    lm = small()
    prompt = torch.tensor([[3, 4, 5]])
    greedy = lm.generate(prompt, max_new_tokens=20)  # the default: greedy
    assert torch.equal(greedy, lm.generate(prompt, 20))
    assert greedy.shape == (1, 23) and (greedy[:, 3:] != 0).all()
    short = lm.generate(prompt, 8)  # 11 ids: within max_len=12, no window
    with torch.no_grad():
        logits = lm(short[:, :-1])[0, 2:]  # the logits of each generated id
    if lm.pad_id is not None:
        logits[:, lm.pad_id] = float("-inf")  # never generated
    assert torch.equal(logits.argmax(dim=-1), short[0, 3:])  # the likeliest each
    seeds = [torch.Generator().manual_seed(s) for s in (1, 1, 2)]
    drawn = [lm.generate(prompt, 20, do_sample=True, generator=g) for g in seeds]
    assert torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[0], drawn[2])
    seed = torch.Generator().manual_seed(3)
    top1 = lm.generate(prompt, 20, do_sample=True, top_k=1, generator=seed)
    assert torch.equal(top1, greedy)  # the one most likely id: greedy
    for option in (dict(temperature=0.8), dict(top_k=3), dict(generator=seed)):
        with pytest.raises(ValueError, match="do_sample"):  # sampling, not asked
            lm.generate(prompt, 2, **option)
    lm.train()
    lm.generate(prompt, 2)
    assert lm.training  # the mode it found


def test_bad_arguments_are_named():
    lm = small()
    cases = [
        (lambda: lm(torch.zeros(1, 13, dtype=torch.long)), "ids"),
        (lambda: lm(torch.full((1, 3), 30)), "ids"),
        (lambda: lm(torch.ones(1, 3)), "ids"),
        (lambda: lm.generate(torch.ones(1, 2, dtype=torch.long), 0), "max_new_tokens"),
        (
            lambda: lm.generate(
                torch.ones(1, 2, dtype=torch.long), 1, do_sample=True, temperature=0.0
            ),
            "temperature",
        ),
        (
            lambda: lm.generate(
                torch.ones(1, 2, dtype=torch.long), 1, do_sample=True, top_k=30
            ),
            "top_k",
        ),
        (
            lambda: lm.generate(
                torch.ones(1, 2, dtype=torch.long), 1, do_sample=True, generator=7
            ),
            "generator",
        ),
        (lambda: small(positional="sine"), "positional"),
        (lambda: small(d_model=15), "d_model"),
        (lambda: small(input_dropout={"dropout": 0.1}), "input_dropout"),
        (lambda: small(output_bias="yes"), "output_bias"),
        (lambda: small(init="xavier"), "init"),
        (lambda: small(num_layer=2), "num_layer"),
        (lambda: small(pad_id=30), "pad_id"),
    ]
    for call, name in cases:
        with pytest.raises((TypeError, ValueError), match=rf"^{name}\b.*expected"):
            call()
    assert small(input_dropout=0.3).embedding.dropout.p == 0.3


def test_training_reports_each_evaluation_with_the_loss_since_the_last():
    corpus = load_corpus()
    torch.manual_seed(0)
    model = TransformerLM(len(corpus.vocab), d_model=8, num_heads=2, d_ff=16, max_len=8)
    seen = []
    history = train_lm(
        model,
        corpus,
        steps=7,
        batch_size=2,
        length=8,
        eval_every=3,
        on_eval=lambda *report: seen.append(report),
    )
    assert [step for step, _, _ in seen] == history.eval_step == [3, 6, 7]
    means = [sum(history.loss[a:b]) / (b - a) for a, b in [(0, 3), (3, 6), (6, 7)]]
    assert [train for _, train, _ in seen] == pytest.approx(means)
    assert [valid for _, _, valid in seen] == history.valid_loss


def test_documents_change_only_the_windows_that_cross_an_end():
    corpus = load_corpus()
    torch.manual_seed(0)
    model = TransformerLM(len(corpus.vocab), d_model=8, num_heads=2, d_ff=16, max_len=8)
    valid = corpus.stream("valid")
    ends = (valid == EOD).nonzero()[:, 0]
    inside = valid[: int(ends[0]) + 1]  # one document: no window crosses an end
    assert evaluate_lm(model, inside, 8, documents=True) == pytest.approx(
        evaluate_lm(model, inside, 8), rel=1e-6
    )
    assert evaluate_lm(model, valid, 8, documents=True) != pytest.approx(
        evaluate_lm(model, valid, 8), rel=1e-6
    )
    seen = []
    history = train_lm(
        model,
        corpus,
        steps=2,
        batch_size=2,
        length=8,
        documents=True,
        on_eval=lambda *report: seen.append(report),
    )
    assert seen[-1][2] == pytest.approx(evaluate_lm(model, valid, 8, documents=True))
    assert history.valid_loss[-1] == seen[-1][2]


def seeded(sample: bool) -> dict[str, torch.Generator]:
    """A fresh generator, seeded 1, when sampling; nothing for greedy."""
    return {"generator": torch.Generator().manual_seed(1)} if sample else {}


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", "rotary", "none"])
def test_generating_with_the_cache_gives_the_ids_of_generating_without(positional):
    model = small(positional=positional, max_len=12)
    prompt = torch.randint(3, 30, (3, 4))
    prompt[0, :2] = 0  # left padding: masked as keys with or without the cache
    for sample in (False, True):  # 14 steps: past max_len, the window slides
        ids = [
            model.generate(
                prompt,
                14,
                do_sample=sample,
                cache=cache,
                **seeded(sample),
            )
            for cache in (True, False)
        ]
        assert torch.equal(*ids)
