"""dropout.py: WordDropout and EmbeddingDropout."""

from __future__ import annotations

import pytest
import torch

from literate_transformer.dropout import EmbeddingDropout, WordDropout


def test_word_dropout_replaces_real_tokens_at_rate_p_and_never_padding(device):
    torch.manual_seed(0)
    tokens = torch.randint(2, 50, (200, 100), device=device)
    tokens[:, 70:] = 0  # padding
    out = WordDropout(0.2, unk_id=1).train()(tokens)
    real = tokens != 0
    replaced = out != tokens
    rate = replaced[real].float().mean().item()
    # 14,000 real tokens: the standard error of the rate is 0.0034.
    assert abs(rate - 0.2) < 0.015, rate
    assert (out[replaced] == 1).all()  # replaced by unk, never by padding
    assert (out[~real] == 0).all()  # padding never becomes a real token
    assert (out[real] != 0).all()  # a real token never becomes padding


def test_word_dropout_is_the_identity_in_eval_mode_or_at_p_zero():
    tokens = torch.randint(0, 9, (4, 7))
    assert torch.equal(WordDropout(0.5, unk_id=1).eval()(tokens), tokens)
    assert torch.equal(WordDropout(0.0, unk_id=1).train()(tokens), tokens)


def test_embedding_dropout_drops_each_type_everywhere_at_rate_p(device):
    torch.manual_seed(0)
    weight = torch.randn(1000, 8, device=device) + 3.0  # no row is zero by chance
    tokens = torch.randint(0, 1000, (64, 50), device=device)
    emb = EmbeddingDropout(0.25).train()(tokens, weight)
    zero = (emb == 0).all(dim=-1)
    for word in tokens.unique()[:200].tolist():
        where = zero[tokens == word]
        assert where.all() or not where.any(), word
    dropped_types = {w for w in tokens.unique().tolist() if zero[tokens == w].all()}
    rate = len(dropped_types) / len(tokens.unique())
    # about 1000 types: the standard error of the rate is 0.014.
    assert abs(rate - 0.25) < 0.05, rate
    kept = ~zero
    torch.testing.assert_close(emb[kept], weight[tokens][kept] / 0.75)


def test_embedding_dropout_preserves_the_expectation():
    torch.manual_seed(0)
    weight = torch.randn(20, 4)
    tokens = torch.arange(20).view(1, -1)
    drop = EmbeddingDropout(0.3).train()
    mean = torch.stack([drop(tokens, weight) for _ in range(4000)]).mean(dim=0)
    # each entry: mean of 4000 draws of w * Bernoulli(0.7) / 0.7
    assert torch.allclose(mean[0], weight, atol=0.1), (mean[0] - weight).abs().max()


def test_embedding_dropout_is_a_plain_lookup_in_eval_mode():
    weight = torch.randn(10, 3)
    tokens = torch.tensor([[1, 2, 3]])
    assert torch.equal(EmbeddingDropout(0.5).eval()(tokens, weight), weight[tokens])


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_a_probability_outside_zero_one_is_refused(p):
    message = f"p: expected a finite number in \\[0, 1\\), got {p}"
    with pytest.raises(ValueError, match=message):
        WordDropout(p, unk_id=1)
    with pytest.raises(ValueError, match=message):
        EmbeddingDropout(p)


def test_word_dropout_refuses_padding_as_the_replacement():
    with pytest.raises(ValueError, match="unk_id, pad_id: expected two different ids"):
        WordDropout(0.1, unk_id=0)
