"""Packing: rows hold every token once and in order, the document mask is the
block-diagonal causal mask, and in TransformerLM no document of a row changes
the outputs of another."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from literate_transformer.lm import TransformerLM
from literate_transformer.masks import attention_mask, padding_mask
from literate_transformer.packing import (
    IGNORE,
    document_labels,
    document_mask,
    document_positions,
    next_tokens,
    pack,
)

POSITIONALS = ["sinusoidal", "learned", "none", "rotary"]

lengths = st.lists(st.integers(1, 20), min_size=1, max_size=8)


def documents_of(sizes: list[int], seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(3, 40, (size,), generator=generator) for size in sizes]


@settings(max_examples=50, deadline=None)
@given(sizes=lengths, length=st.integers(1, 16), one_per_row=st.booleans())
def test_packing_keeps_every_token_once_and_in_order(sizes, length, one_per_row):
    docs = documents_of(sizes)
    ids, labels = pack(docs, length, one_per_row=one_per_row)
    assert ids.shape == labels.shape and ids.size(1) == length
    assert torch.equal(ids[labels >= 0], torch.cat(docs))  # row-major: the order
    assert ids[labels < 0].eq(0).all()
    pieces = sum(-(-size // length) for size in sizes)  # ceil: pieces of a row
    if one_per_row:
        assert len(ids) == pieces
    else:  # next fit: two rows in a row never hold less than a row
        kept = (labels >= 0).sum(dim=1)
        assert len(ids) <= pieces and (kept[:-1] + kept[1:] > length).all()


@settings(max_examples=50, deadline=None)
@given(sizes=lengths, length=st.integers(1, 16))
def test_the_document_mask_is_causal_within_a_document_and_closed_between(
    sizes, length
):
    _, labels = pack(documents_of(sizes), length)
    mask = document_mask(labels)[:, 0]  # (N, T, T)
    N, T = labels.shape
    for n in range(N):
        for i in range(T):
            for j in range(T):
                same = labels[n, i] == labels[n, j] and labels[n, j] >= 0
                assert mask[n, i, j] == (bool(same) and j <= i)


def test_one_document_per_row_gives_the_padding_and_causal_mask():
    ids, labels = pack(documents_of([3, 5, 1, 6]), 6, one_per_row=True)
    expected = attention_mask(padding_mask(ids), causal=True)
    real = labels >= 0  # the queries that are padding differ: they see nothing
    assert torch.equal(
        document_mask(labels)[real[:, None, :]], expected[real[:, None, :]]
    )


@settings(max_examples=50, deadline=None)
@given(sizes=lengths, length=st.integers(2, 16))
def test_next_tokens_stay_in_their_document(sizes, length):
    ids, labels = pack(documents_of(sizes), length)
    targets = next_tokens(ids, labels)
    for n in range(len(ids)):
        for t in range(length):
            inside = t + 1 < length and labels[n, t] >= 0
            inside = inside and labels[n, t + 1] == labels[n, t]
            assert targets[n, t] == (ids[n, t + 1] if inside else IGNORE)


def lm(positional: str) -> TransformerLM:
    torch.manual_seed(0)
    sizes = dict(d_model=16, num_heads=2, d_ff=32, dropout=0.0, max_len=16)
    return TransformerLM(40, positional=positional, **sizes).eval()


@pytest.mark.parametrize("positional", POSITIONALS)
@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=2, max_size=3), data=st.data())
def test_a_token_output_does_not_change_when_another_document_changes(
    positional, sizes, data
):
    model = lm(positional)
    docs = documents_of(sizes, data.draw(st.integers(0, 100)))
    ids, labels = pack(docs, 16)
    assert len(ids) == 1  # all in one row
    changed_doc = data.draw(st.integers(0, len(docs) - 1))
    other = [*docs]
    other[changed_doc] = documents_of([sizes[changed_doc]], 1000)[0]
    other_ids, _ = pack(other, 16)
    with torch.no_grad():
        out, out_other = model(ids, labels), model(other_ids, labels)
    kept = (labels >= 0) & (labels != changed_doc)  # the other documents' tokens
    torch.testing.assert_close(out[kept], out_other[kept])


@pytest.mark.parametrize("positional", POSITIONALS)
def test_a_packed_document_gives_its_outputs_alone(positional):
    model = lm(positional)  # positions restart at each document
    docs = documents_of([5, 4, 6])
    ids, labels = pack(docs, 16)
    alone, alone_labels = pack(docs, 16, one_per_row=True)
    with torch.no_grad():
        packed = model(ids, labels)[labels >= 0]
        padded = model(alone, alone_labels)[alone_labels >= 0]
        plain = model(alone)[alone_labels >= 0]  # the padding mask, no labels
    torch.testing.assert_close(packed, padded)
    torch.testing.assert_close(padded, plain)


def test_document_positions_count_from_each_documents_start():
    labels = torch.tensor([[0, 0, 0, 1, 1, -1, -1], [0, 1, 1, 1, 2, 2, 2]])
    assert document_positions(labels).tolist() == [
        [0, 1, 2, 0, 1, 0, 0],
        [0, 0, 1, 2, 0, 1, 2],
    ]


@settings(max_examples=50, deadline=None)
@given(sizes=lengths, length=st.integers(1, 16))
def test_document_positions_number_every_piece_from_zero(sizes, length):
    _, labels = pack(documents_of(sizes), length)
    positions = document_positions(labels)
    for row, label in zip(positions, labels, strict=True):
        for d in label[label >= 0].unique():
            assert row[label == d].tolist() == list(range(int((label == d).sum())))
    assert positions[labels < 0].eq(0).all()


def test_with_absolute_positions_the_start_matters_unless_restarted():
    model = lm("sinusoidal")
    docs = documents_of([5, 4])
    ids, labels = pack(docs, 16)
    with torch.no_grad():
        restarted = model(ids, labels)[0, 5:9]  # positions 0-3 again
        shifted = model(ids[:, :9])[0, 5:9]  # one causal row, positions 5-8
        alone = model(docs[1][None])[0]
    torch.testing.assert_close(restarted, alone)
    assert not torch.allclose(shifted, alone, atol=1e-4)


def test_the_packed_loss_is_the_loss_of_each_document_alone():
    model = lm("rotary")
    docs = documents_of([7, 3, 5, 2])
    ids, labels = pack(docs, 16)
    with torch.no_grad():
        logits = model(ids, labels)
        packed = F.cross_entropy(
            logits.flatten(0, 1), next_tokens(ids, labels).flatten(), reduction="sum"
        )
        alone = sum(
            F.cross_entropy(model(d[None])[0, :-1], d[1:], reduction="sum")
            for d in docs
        )
    torch.testing.assert_close(packed, alone)


def test_padded_queries_give_zeros_not_nan_in_evaluation_and_in_training():
    model = lm("sinusoidal")
    ids, labels = pack(documents_of([3]), 8)
    with torch.no_grad():
        assert not model(ids, labels).isnan().any()
    model.train()  # the training path as well, with gradients
    model(ids, labels).sum().backward()
    assert all(
        not p.grad.isnan().any() for p in model.parameters() if p.grad is not None
    )


@settings(max_examples=30, deadline=None)
@given(sizes=lengths, start=st.integers(0, 30), length=st.integers(1, 16))
def test_document_labels_read_a_window_of_a_stream_as_its_documents(
    sizes, start, length
):
    end = 2
    docs = [torch.cat([d, torch.tensor([end])]) for d in documents_of(sizes)]
    stream = torch.cat(docs)
    window = stream[start : start + length][None]
    if window.numel() == 0:
        return
    labels = document_labels(window, end)[0]
    owner = torch.cat([torch.full((len(d),), i) for i, d in enumerate(docs)])
    owner = owner[start : start + length]
    assert torch.equal(labels, owner - owner[0])  # a new label at each document
    assert labels.diff().ge(0).all() and labels.diff().le(1).all()


def test_a_window_read_with_its_labels_gives_each_document_what_it_gives_alone():
    end = 2
    torch.manual_seed(0)
    model = TransformerLM(40, d_model=16, num_heads=2, d_ff=32, max_len=16).eval()
    first, second = documents_of([5, 9], seed=3)
    window = torch.cat([first, torch.tensor([end]), second])[None]  # 15 ids
    labels = document_labels(window, end)
    with torch.no_grad():
        packed = model(window, labels)[0]
        alone = model(second[None])[0]
        plain = model(window)[0]
    assert torch.allclose(packed[6:], alone, atol=1e-5)
    assert not torch.allclose(plain[6:], alone, atol=1e-3)  # it reads the first
