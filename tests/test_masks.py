"""masks.py: padding, causal and combined masks, and the notes' heuristic."""

from __future__ import annotations

import pytest
import torch

from literate_transformer.masks import (
    attention_mask,
    causal_mask,
    key_mask_from_embeddings,
    padding_mask,
)


def test_padding_mask_is_true_exactly_at_real_tokens(device):
    tokens = torch.tensor([[5, 8, 0, 0], [3, 0, 4, 7]], device=device)
    expected = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(padding_mask(tokens).cpu(), expected)
    assert torch.equal(
        padding_mask(tokens, pad_id=7).cpu()[1], torch.tensor([1, 1, 1, 0]).bool()
    )


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (
            torch.zeros(4, dtype=torch.long),
            r"tokens: expected token ids of shape \(N, T\).*got shape \(4,\)",
        ),
        (torch.zeros(2, 3), "expected integer token ids .*got a torch.float32"),
        (
            torch.zeros(2, 3, dtype=torch.bool),
            "expected integer token ids .*got a torch.bool",
        ),
    ],
)
def test_padding_mask_rejects_bad_tokens(tokens, message):
    with pytest.raises((TypeError, ValueError), match=message):
        padding_mask(tokens)


@pytest.mark.parametrize("size", [1, 2, 7])
def test_causal_mask_lets_query_i_see_keys_up_to_i(size, device):
    mask = causal_mask(size, device=device)
    assert mask.dtype == torch.bool and mask.device.type == device.type
    for i in range(size):
        for j in range(size):
            assert mask[i, j].item() == (j <= i)


def test_causal_mask_rejects_an_empty_size():
    with pytest.raises(ValueError, match="size: expected an integer >= 1, got 0"):
        causal_mask(0)


def test_attention_mask_broadcasts_padding_and_causal_masks(device):
    tokens = torch.tensor([[5, 8, 2, 0, 0], [3, 9, 4, 7, 1]], device=device)
    real = padding_mask(tokens)
    padding_only = attention_mask(real)
    assert padding_only.shape == (2, 1, 1, 5)
    combined = attention_mask(real, causal=True)
    assert combined.shape == (2, 1, 5, 5)
    expected = real[:, None, None, :] & torch.ones(5, 5, device=device).tril().bool()
    assert torch.equal(combined, expected)
    assert torch.equal(attention_mask(causal=True, size=5)[0, 0], causal_mask(5))
    assert attention_mask() is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"key_padding": torch.ones(2, 3)},
            r"expected a bool tensor of shape \(N, T_k\).*got a torch.float32",
        ),
        (
            {"key_padding": torch.ones(3, dtype=torch.bool)},
            r"shape \(N, T_k\), got \(3,\)",
        ),
        (
            {"key_padding": torch.ones(2, 3, dtype=torch.bool), "size": 4},
            "expected T_k = 3",
        ),
        ({"causal": True}, "size: expected size=T for a causal mask without"),
    ],
)
def test_attention_mask_rejects_bad_input(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        attention_mask(**kwargs)


def test_the_notes_heuristic_works_only_while_padding_vectors_are_zero():
    tokens = torch.tensor([[5, 8, 2, 0, 0], [3, 9, 4, 7, 1]])
    torch.manual_seed(0)
    emb = torch.nn.Embedding(10, 16, padding_idx=0)(tokens).detach()
    assert torch.equal(key_mask_from_embeddings(emb), padding_mask(tokens))
    shifted = emb + torch.randn(5, 16)  # anything added at every position
    assert key_mask_from_embeddings(shifted).all()


def test_the_notes_heuristic_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"expected shape \(N, T, C\), got \(2, 3\)"):
        key_mask_from_embeddings(torch.zeros(2, 3))


@pytest.mark.parametrize("seed", range(5))
def test_right_padding_with_a_causal_mask_leaves_no_query_without_keys(seed):
    generator = torch.Generator().manual_seed(seed)
    N, T = 6, 9
    lengths = torch.randint(1, T + 1, (N,), generator=generator)
    tokens = (torch.arange(T) < lengths[:, None]).long()  # right padded, 1 = real
    assert attention_mask(padding_mask(tokens), causal=True).any(dim=-1).all()
    left = tokens.flip(-1)  # the same batch, left padded
    empty = ~attention_mask(padding_mask(left), causal=True).any(dim=-1)  # (N, 1, T)
    expected = (
        torch.arange(T) < (T - lengths)[:, None]
    )  # queries before the first token
    assert torch.equal(empty[:, 0], expected)
