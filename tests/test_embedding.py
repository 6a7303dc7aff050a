"""embedding.py: TransformerEmbedding's options, padding row, and bad input."""

from __future__ import annotations

import pytest
import torch

from literate_transformer.embedding import TransformerEmbedding
from literate_transformer.positional import sinusoidal_encoding

TOKENS = torch.tensor([[5, 8, 2, 0, 0], [3, 9, 4, 7, 1]])


@pytest.mark.parametrize(
    ("positional", "combine"),
    [
        ("sinusoidal", "add"),
        ("learned", "add"),
        ("none", "add"),
        ("sinusoidal", "concat"),
        ("learned", "concat"),
    ],
)
def test_every_option_gives_the_model_width(positional, combine, device):
    torch.manual_seed(0)
    layer = TransformerEmbedding(
        20, 32, max_len=8, positional=positional, combine=combine
    ).to(device)
    out = layer(TOKENS.to(device))
    assert out.shape == (2, 5, 32)
    assert out.device.type == device.type


def test_add_is_scaled_embedding_plus_encoding():
    torch.manual_seed(0)
    layer = TransformerEmbedding(20, 16, max_len=8, dropout=0.0)
    expected = layer.token.weight[TOKENS] * 4.0 + sinusoidal_encoding(8, 16)[:5]
    torch.testing.assert_close(layer(TOKENS), expected)


def test_concat_splits_the_width_between_tokens_and_positions():
    torch.manual_seed(0)
    layer = TransformerEmbedding(
        20, 16, max_len=8, combine="concat", d_position=6, dropout=0.0
    )
    out = layer(TOKENS)
    assert layer.token.embedding_dim == 10
    torch.testing.assert_close(out[..., :10], layer.token.weight[TOKENS] * 10**0.5)
    positions = sinusoidal_encoding(8, 6)[:5].expand(2, 5, 6)
    torch.testing.assert_close(out[..., 10:], positions)


def test_the_padding_row_is_zero_and_gets_no_gradient():
    torch.manual_seed(0)
    layer = TransformerEmbedding(
        20, 16, max_len=8, positional="none", pad_id=3, dropout=0.0
    )
    assert layer.token.weight[3].eq(0).all()
    tokens = torch.tensor([[3, 1, 3]])
    assert layer(tokens)[0, 0].eq(0).all()
    layer(tokens).square().sum().backward()
    assert (
        layer.token.weight.grad[3].eq(0).all()
        and layer.token.weight.grad[1].ne(0).any()
    )


def test_default_scale_gives_unit_variance_token_coordinates():
    torch.manual_seed(0)
    layer = TransformerEmbedding(5000, 256, max_len=1, positional="none", dropout=0.0)
    coordinates = layer(torch.arange(1, 5000).view(-1, 1))
    assert abs(coordinates.std().item() - 1) < 0.02


def test_scale_and_init_std_can_be_set():
    torch.manual_seed(0)
    layer = TransformerEmbedding(
        5000, 64, max_len=1, positional="none", scale=8.0, init_std=1.0, dropout=0.0
    )
    assert abs(layer(torch.arange(1, 5000).view(-1, 1)).std().item() - 8) < 0.2


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    layer = TransformerEmbedding(20, 64, max_len=8, dropout=0.5)
    assert not torch.equal(layer(TOKENS), layer(TOKENS))
    layer.eval()
    assert torch.equal(layer(TOKENS), layer(TOKENS))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"positional": "rotary"}, "positional: expected one of .*got 'rotary'"),
        ({"combine": "sum"}, "combine: expected one of .*got 'sum'"),
        (
            {"combine": "concat", "positional": "none"},
            "expected a positional encoding to concatenate, got positional='none'",
        ),
        (
            {"combine": "concat", "d_position": 16},
            r"d_position: expected an integer in \[1, 15\], got 16",
        ),
        ({"pad_id": 20}, r"pad_id: expected an integer in \[0, 19\], got 20"),
        ({"max_len": 3}, "tokens: expected at most max_len=3 positions, got 5"),
        (
            {"max_len": 0, "positional": "none"},
            "max_len: expected an integer >= 1, got 0",
        ),
        (
            {"combine": "concat", "d_position": 5},
            "d_position: expected an even width, got 5",
        ),
        ({"dropout_on": "position"}, "dropout_on: expected one of .*'position'"),
        ({"dropout": 1.0}, r"dropout: expected a finite number in \[0, 1\), got 1.0"),
        ({"word_dropout": -0.1}, r"word_dropout: expected a finite number in \[0, 1\)"),
        ({"embedding_dropout": 1.5}, r"embedding_dropout: expected a finite number"),
        ({"word_dropout": 0.1}, r"unk_id: expected an id to replace.*got None"),
        ({"word_dropout": 0.1, "unk_id": 20}, r"unk_id: expected .*\[0, 19\], got 20"),
        ({"word_dropout": 0.1, "unk_id": 0}, "expected two different ids, got 0"),
    ],
)
def test_bad_options_are_refused_with_what_was_expected(kwargs, message):
    options = {"max_len": 8, **kwargs}
    with pytest.raises((TypeError, ValueError), match=message):
        TransformerEmbedding(20, 16, **options)(TOKENS)


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (torch.tensor([[1, 20]]), r"expected ids in \[0, 20\), got ids from 1 to 20"),
        (torch.tensor([[-1, 2]]), r"got ids from -1 to 2"),
        (
            torch.zeros(2, 3),
            r"integer token ids of shape \(N, T\), got a torch.float32 tensor",
        ),
        (torch.zeros(2, 3, dtype=torch.bool), r"got a torch.bool tensor of shape"),
        (torch.zeros(2, 0, dtype=torch.long), r"with N, T >= 1, got shape \(2, 0\)"),
        (torch.zeros(3, dtype=torch.long), r"got shape \(3,\)"),
    ],
)
def test_bad_token_ids_are_refused(tokens, message):
    with pytest.raises((TypeError, ValueError), match=message):
        TransformerEmbedding(20, 16, max_len=8)(tokens)


def test_padding_can_be_turned_off():
    torch.manual_seed(0)
    layer = TransformerEmbedding(
        20, 16, max_len=8, positional="none", pad_id=None, dropout=0.0
    )
    assert layer.token.padding_idx is None and layer.token.weight[0].ne(0).any()


def test_dropout_on_the_token_leaves_the_position_whole():
    torch.manual_seed(0)
    layer = TransformerEmbedding(20, 16, max_len=8, dropout=0.5, dropout_on="token")
    out = layer.train()(TOKENS)
    token = layer.token(TOKENS) * layer.scale
    pe = sinusoidal_encoding(5, 16)
    dropped = (out - pe).abs() < 1e-6  # only the position is left
    real = token.abs() > 1e-3
    rate = dropped[real].float().mean().item()
    assert 0.3 < rate < 0.7, rate  # 104 real coordinates at p = 0.5
    kept = ~dropped & real
    torch.testing.assert_close(out[kept], (2 * token + pe)[kept])


def test_word_and_embedding_dropout_act_through_the_layer():
    torch.manual_seed(0)
    tokens = torch.randint(2, 19, (64, 5))
    options = {"max_len": 8, "positional": "none", "dropout": 0.0}
    words = TransformerEmbedding(20, 16, word_dropout=0.3, unk_id=19, **options)
    clean = words.eval()(tokens)
    unk = words(torch.full_like(tokens, 19))
    out = words.train()(tokens)
    same = (out == clean).all(-1)
    replaced = (out == unk).all(-1)
    assert (same ^ replaced).all()  # each token kept, or replaced by unk
    assert 0.2 < replaced.float().mean().item() < 0.4  # 320 tokens at p = 0.3

    types = TransformerEmbedding(20, 16, embedding_dropout=0.3, **options).train()
    zero = (types(tokens) == 0).all(-1)
    for word in tokens.unique().tolist():
        assert zero[tokens == word].all() or not zero[tokens == word].any()
    assert zero.any() and not zero.all()


def test_the_padding_row_gets_no_gradient_under_embedding_dropout():
    torch.manual_seed(0)
    layer = TransformerEmbedding(
        20, 16, max_len=8, embedding_dropout=0.2, dropout=0.0
    ).train()
    layer(TOKENS).sum().backward()
    grad = layer.token.weight.grad
    assert grad[0].eq(0).all()  # padding, as with nn.Embedding's padding_idx
    assert grad[TOKENS[1]].ne(0).any()
