"""GPT-2 in this package: `load_gpt2` against transformers' GPT2LMHeadModel
with random weights (built from a configuration, nothing downloaded), and the
causal path without a mask that a model without a padding id takes."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

from literate_transformer.attention import KVCache, MultiHeadAttention
from literate_transformer.lm import TransformerLM, init_gpt2, load_gpt2
from literate_transformer.masks import causal_mask


def random_gpt2(
    layers: int = 3, heads: int = 2, width: int = 24, seed: int = 0
) -> GPT2LMHeadModel:
    """A GPT-2 of 50 ids and 32 positions, every weight drawn from N(0, 0.3)
    (GPT-2's own 0.02 would leave every logit near zero)."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=50,
        n_positions=32,
        n_embd=width,
        n_layer=layers,
        n_head=heads,
        bos_token_id=None,
        eos_token_id=None,
    )
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for weight in model.parameters():
            weight.normal_(0.0, 0.3)
    return model


@pytest.mark.parametrize(("layers", "heads", "width"), [(1, 1, 8), (3, 2, 24)])
def test_loaded_weights_give_gpt2s_logits_and_greedy_text(layers, heads, width):
    gpt2 = random_gpt2(layers, heads, width)
    ours = load_gpt2(gpt2.state_dict(), num_heads=heads).eval()
    assert len(ours.layers) == layers and ours.d_model == width
    ids = torch.randint(0, 50, (4, 32))  # the whole context, id 0 included
    with torch.no_grad():
        theirs = gpt2(ids).logits
    torch.testing.assert_close(ours(ids), theirs, rtol=1e-4, atol=1e-4)
    prompt = ids[:, :4]
    written = gpt2.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=20,
        do_sample=False,
    )
    for cache in (True, False):
        assert torch.equal(ours.generate(prompt, 20, cache=cache), written)


def test_the_body_alone_loads_too_and_the_output_has_no_bias():
    gpt2 = random_gpt2()
    body = GPT2Model(gpt2.config)
    body.load_state_dict(gpt2.transformer.state_dict())
    keys = body.state_dict().keys()
    assert not any(key.startswith("transformer.") for key in keys)  # no prefix
    ours = load_gpt2(body.state_dict(), num_heads=2).eval()
    ids = torch.randint(0, 50, (2, 16))
    with torch.no_grad():
        theirs = gpt2(ids).logits
    torch.testing.assert_close(ours(ids), theirs, rtol=1e-4, atol=1e-4)
    assert ours.output.weight is ours.embedding.token.weight  # tied
    assert ours.output.bias is None and ours.pad_id is None  # tied: no bias


def test_a_wrong_number_of_heads_gives_other_logits():
    gpt2 = random_gpt2(heads=2)
    ids = torch.randint(0, 50, (2, 16))
    with torch.no_grad():
        theirs = gpt2(ids).logits
        wrong = load_gpt2(gpt2.state_dict(), num_heads=3).eval()(ids)
    assert (wrong - theirs).abs().max() > 1e-2  # the heads are not in the weights


def test_without_a_padding_id_the_model_attends_causally_with_no_mask():
    torch.manual_seed(0)
    options = dict(d_model=16, num_heads=2, d_ff=32, dropout=0.0, max_len=12)
    masked = TransformerLM(30, pad_id=0, output_bias=True, **options).eval()
    unmasked = TransformerLM(30, pad_id=None, output_bias=True, **options).eval()
    unmasked.load_state_dict(masked.state_dict())
    ids = torch.randint(1, 30, (3, 12))  # no padding: the two masks agree
    torch.testing.assert_close(unmasked(ids), masked(ids))
    changed = ids.clone()
    changed[:, 7:] = torch.randint(1, 30, (3, 5))
    torch.testing.assert_close(unmasked(changed)[:, :7], unmasked(ids)[:, :7])
    with torch.no_grad():
        unmasked.output.bias[0] = 100.0  # id 0 is a word like any other
        masked.output.bias[0] = 100.0
    assert (unmasked.generate(ids[:, :2], 3)[:, 2:] == 0).all()
    assert (masked.generate(ids[:, :2], 3)[:, 2:] != 0).all()


@pytest.mark.parametrize("fused", [True, False])
def test_is_causal_equals_the_causal_mask_with_and_without_a_cache(fused):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, fused=fused).eval()
    x = torch.randn(2, 9, 16)
    expected, _ = mha(x, mask=causal_mask(9))
    out, _ = mha(x, is_causal=True)
    torch.testing.assert_close(out, expected)
    _, weights = mha(x, is_causal=True, need_weights=True)
    assert weights is not None and not weights.triu(1).any()  # no future weight
    cache = KVCache()
    first, _ = mha(x[:, :4], is_causal=True, cache=cache)  # four at once
    rest = [mha(x[:, t : t + 1], is_causal=True, cache=cache)[0] for t in range(4, 7)]
    last, _ = mha(x[:, 7:], is_causal=True, cache=cache)  # two after seven cached
    torch.testing.assert_close(torch.cat([first, *rest, last], dim=1), expected)


def test_init_gpt2_draws_each_weight_as_transformers_gpt2_does():
    """Per kind of weight, the spread of init_gpt2's weights and of those of
    a GPT2LMHeadModel that transformers initialises, with the same sizes."""
    torch.manual_seed(0)
    size = dict(vocab_size=1000, n_positions=256, n_embd=256, n_layer=4, n_head=4)
    theirs = GPT2LMHeadModel(GPT2Config(**size)).state_dict()
    ours = load_gpt2(theirs, num_heads=4)  # GPT-2's design, then re-initialised
    state = init_gpt2(ours).state_dict()
    pairs = {
        "embedding.token.weight": "transformer.wte.weight",
        "embedding.position.weight": "transformer.wpe.weight",
        "layers.2.self_attn.q_proj.weight": "transformer.h.2.attn.c_attn.weight",
        "layers.2.self_attn.out_proj.weight": "transformer.h.2.attn.c_proj.weight",
        "layers.2.ff.linear1.weight": "transformer.h.2.mlp.c_fc.weight",
        "layers.2.ff.linear2.weight": "transformer.h.2.mlp.c_proj.weight",
    }
    for mine, their in pairs.items():
        ratio = state[mine].std().item() / theirs[their].std().item()
        assert abs(ratio - 1) < 0.05, (mine, ratio)
    for mine, their in (
        ("layers.2.norm1.weight", "transformer.h.2.ln_1.weight"),
        ("layers.2.ff.linear2.bias", "transformer.h.2.mlp.c_proj.bias"),
        ("norm.bias", "transformer.ln_f.bias"),
    ):
        assert torch.equal(state[mine], theirs[their]), mine  # ones, zeros
    assert "output.bias" not in state  # tied: none, as GPT-2


def test_init_gpt2_refuses_what_it_cannot_initialise():
    with pytest.raises(TypeError, match="model: expected a TransformerLM"):
        init_gpt2(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="std: expected a finite number > 0"):
        init_gpt2(TransformerLM(10, d_model=8, num_heads=2), std=0.0)
