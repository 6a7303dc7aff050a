"""positional.py: the sinusoidal table, its properties, learned positions, RoPE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lab.positional_runs import linear_probe_accuracy
from literate_transformer.positional import (
    LearnedPositionalEncoding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    frequencies,
    sinusoidal_encoding,
)


def closed_form(max_len: int, d_model: int) -> np.ndarray:
    """The paper's formula in float64 NumPy, written independently of the package."""
    table = np.zeros((max_len, d_model))
    for pos in range(max_len):
        for i in range(0, d_model, 2):
            angle = pos / 10000 ** (i / d_model)
            table[pos, i] = math.sin(angle)
            table[pos, i + 1] = math.cos(angle)
    return table


@pytest.mark.parametrize(
    ("max_len", "d_model"), [(1, 2), (50, 8), (200, 64), (513, 30)]
)
def test_the_table_matches_the_closed_form(max_len, d_model):
    expected = closed_form(max_len, d_model)
    got = sinusoidal_encoding(max_len, d_model, dtype=torch.float64).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    float32 = sinusoidal_encoding(max_len, d_model).numpy()
    np.testing.assert_allclose(float32, expected, atol=1e-6)


@pytest.mark.parametrize("d_model", [2, 16, 128, 512])
@pytest.mark.parametrize("k", [1, 7, 100])
def test_a_shift_by_k_is_the_same_rotation_at_every_position(d_model, k):
    pe = sinusoidal_encoding(400, d_model, dtype=torch.float64)
    w = frequencies(d_model)
    sin, cos = pe[:, 0::2], pe[:, 1::2]  # (T, d/2) each
    c, s = torch.cos(k * w), torch.sin(k * w)
    assert torch.allclose(sin[:-k] * c + cos[:-k] * s, sin[k:], atol=1e-9)
    assert torch.allclose(cos[:-k] * c - sin[:-k] * s, cos[k:], atol=1e-9)


@pytest.mark.parametrize("d_model", [4, 32, 256])
def test_dot_products_depend_only_on_the_offset(d_model):
    pe = sinusoidal_encoding(300, d_model, dtype=torch.float64)
    dots = pe @ pe.T
    w = frequencies(d_model)
    for offset in range(-299, 300, 23):
        diagonal = torch.diagonal(dots, offset=offset)
        expected = torch.cos(offset * w).sum()
        assert torch.allclose(diagonal, expected.expand_as(diagonal), atol=1e-9)


def test_every_row_has_norm_sqrt_half_d():
    pe = sinusoidal_encoding(1000, 512)
    assert torch.allclose(pe.norm(dim=1), torch.full((1000,), 16.0), atol=1e-4)


def test_the_module_is_a_non_persistent_buffer_that_follows_the_device(device):
    module = SinusoidalPositionalEncoding(64, 16).to(device)
    assert module(10).device.type == device.type
    assert torch.equal(module(10).cpu(), sinusoidal_encoding(64, 16)[:10])
    assert module.state_dict() == {} and list(module.parameters()) == []


def test_learned_positions_are_trained_and_bounded(device):
    torch.manual_seed(0)
    module = LearnedPositionalEncoding(32, 8).to(device)
    assert module(5).shape == (5, 8)
    module(5).sum().backward()
    assert module.weight.grad[:5].eq(1).all() and module.weight.grad[5:].eq(0).all()


@pytest.mark.parametrize(
    "make", [SinusoidalPositionalEncoding, LearnedPositionalEncoding]
)
def test_a_sequence_longer_than_max_len_is_refused(make):
    with pytest.raises(
        ValueError, match="length: expected 1 to max_len=16 positions, got 17"
    ):
        make(16, 8)(17)


@pytest.mark.parametrize(
    ("d_model", "message"),
    [
        (0, "expected an integer >= 2, got 0"),
        (-2, "expected an integer >= 2, got -2"),
        (3, "expected an even width, got 3"),
        (17, "expected an even width, got 17"),
    ],
)
def test_an_odd_or_empty_width_is_refused(d_model, message):
    with pytest.raises(ValueError, match=f"d_model: {message}"):
        sinusoidal_encoding(10, d_model)


def test_an_empty_table_is_refused():
    with pytest.raises(ValueError, match="max_len: expected an integer >= 1, got 0"):
        sinusoidal_encoding(0, 8)


@pytest.mark.parametrize("d_head", [2, 8, 64])
def test_rotary_scores_depend_only_on_the_offset(d_head, device):
    torch.manual_seed(d_head)
    rope = RotaryEmbedding(d_head).to(device)
    q = torch.randn(d_head, device=device, dtype=torch.float64)
    k = torch.randn(d_head, device=device, dtype=torch.float64)
    T = 200
    rotated_q = rope(q.expand(T, d_head).contiguous().float()).double()  # (T, d)
    rotated_k = rope(k.expand(T, d_head).contiguous().float()).double()
    scores = rotated_q @ rotated_k.T  # scores[m, n]: q at m, k at n
    for offset in range(-150, 151, 17):
        diagonal = torch.diagonal(scores, offset=-offset)  # m - n = offset
        assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal), atol=1e-3)


def test_rotary_offset_continues_the_positions(device):
    rope = RotaryEmbedding(8).to(device)
    x = torch.randn(2, 3, 10, 8, device=device)
    whole = rope(x)
    assert torch.allclose(rope(x[..., 4:, :], offset=4), whole[..., 4:, :], atol=1e-6)
    assert torch.allclose(whole.norm(dim=-1), x.norm(dim=-1), atol=1e-5)


def test_rotary_refuses_bad_input():
    rope = RotaryEmbedding(8)
    with pytest.raises(
        ValueError, match=r"x: expected shape \(..., T, d_head=8\), got \(4, 6\)"
    ):
        rope(torch.zeros(4, 6))
    with pytest.raises(ValueError, match="offset: expected an integer >= 0, got -1"):
        rope(torch.zeros(10, 8), offset=-1)
    with pytest.raises(ValueError, match="d_head: expected an even width, got 7"):
        RotaryEmbedding(7)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_rotary_in_half_precision_rounds_only_its_output(dtype, device):
    torch.manual_seed(0)
    rope = RotaryEmbedding(16).to(device, dtype)  # no half-precision tables
    x = torch.randn(3, 50, 16, device=device).to(dtype)
    eps = torch.finfo(dtype).eps
    for offset in (0, 4000):
        got = rope(x, offset=offset).float()
        exact = rope(x.float(), offset=offset)  # the same inputs, in float32
        assert torch.allclose(got, exact, rtol=eps, atol=eps), offset


def test_learned_positions_start_as_loud_as_the_sinusoids():
    torch.manual_seed(0)
    table = LearnedPositionalEncoding(512, 256)(512)
    rms = table.pow(2).mean().sqrt().item()
    sinusoid_rms = sinusoidal_encoding(512, 256).pow(2).mean().sqrt().item()
    assert abs(rms - sinusoid_rms) < 0.01, (rms, sinusoid_rms)


def test_the_probe_reads_a_linearly_decodable_label_and_not_noise():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat(50)
    centres = torch.randn(10, 20, generator=generator) * 5
    features = centres[labels] + torch.randn(500, 20, generator=generator)
    train = torch.rand(500, generator=generator) < 0.7
    assert linear_probe_accuracy(features, labels, train) > 0.95
    noise = torch.randn(500, 20, generator=generator)
    assert linear_probe_accuracy(noise, labels, train) < 0.3
    with pytest.raises(ValueError, match=r"expected shapes \(n, d\) and \(n,\)"):
        linear_probe_accuracy(features, labels[:5], train)


def test_the_table_is_a_buffer_that_is_not_trained_and_moves_with_the_module():
    module = SinusoidalPositionalEncoding(max_len=100, d_model=16)
    assert [name for name, _ in module.named_buffers()] == ["pe"]
    assert "pe" not in module.state_dict()
    assert list(module.parameters()) == []
    assert module.to(torch.float64)(3).dtype == torch.float64
