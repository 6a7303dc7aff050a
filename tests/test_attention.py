"""attention.py: explicit == fused == torch.nn.MultiheadAttention, and masks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from literate_transformer.attention import MultiHeadAttention, attention
from literate_transformer.masks import attention_mask, causal_mask, padding_mask

# Tolerances per dtype: the paths add the same numbers in different orders,
# and in half precision round differently. (assert_close's defaults for
# half types are relative tolerances with atol 1e-5, too tight for outputs
# near zero; they fit float32 and float64, see the tests below.)
TOLERANCE = {
    torch.float64: 1e-10,
    torch.float32: 2e-5,
    torch.bfloat16: 5e-2,
    torch.float16: 5e-3,
}


def dtypes_on(device: torch.device) -> list[torch.dtype]:
    """The floating dtypes worth testing on this device."""
    found = [torch.float32, torch.float64]
    if device.type == "cpu" or torch.cuda.is_bf16_supported():
        found.append(torch.bfloat16)
    found.append(torch.float16)
    return found


def to_torch(ours: MultiHeadAttention) -> torch.nn.MultiheadAttention:
    """A torch.nn.MultiheadAttention with our weights, in its packed layout."""
    p = next(ours.parameters())
    theirs = torch.nn.MultiheadAttention(
        ours.d_model, ours.num_heads, batch_first=True, device=p.device, dtype=p.dtype
    )
    with torch.no_grad():
        theirs.in_proj_weight.copy_(
            torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight])
        )
        theirs.in_proj_bias.copy_(
            torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias])
        )
        theirs.out_proj.load_state_dict(ours.out_proj.state_dict())
    return theirs.eval()


def random_tokens(n: int, t: int, generator: torch.Generator) -> torch.Tensor:
    """Right-padded ids (pad = 0); every sequence keeps at least one token."""
    lengths = torch.randint(1, t + 1, (n,), generator=generator)
    ids = torch.randint(1, 50, (n, t), generator=generator)
    return ids * (torch.arange(t) < lengths[:, None])


CASES = [
    # (N, T_q, T_k, d_model, heads, causal)
    (1, 1, 1, 4, 1, False),
    (2, 5, 5, 16, 2, True),
    (3, 7, 4, 24, 3, False),  # cross-attention, T_q > T_k
    (4, 3, 9, 32, 4, False),  # cross-attention, T_q < T_k
    (2, 12, 12, 64, 8, True),
    (5, 6, 6, 12, 4, False),
]


@pytest.mark.parametrize(("N", "T_q", "T_k", "d_model", "heads", "causal"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_explicit_fused_and_torch_agree(
    device, N, T_q, T_k, d_model, heads, causal, seed
):
    generator = torch.Generator().manual_seed(seed)
    for dtype in dtypes_on(device):
        torch.manual_seed(seed)
        ours = MultiHeadAttention(d_model, heads).to(device, dtype).eval()
        theirs = to_torch(ours)
        query = torch.randn(N, T_q, d_model, generator=generator).to(device, dtype)
        if T_q == T_k:
            key = query
        else:
            key = torch.randn(N, T_k, d_model, generator=generator).to(device, dtype)
        real = padding_mask(random_tokens(N, T_k, generator).to(device))
        mask = attention_mask(real, causal=causal)
        with torch.no_grad():
            ours.fused = True
            fused, _ = ours(query, key, mask=mask)
            ours.fused = False
            explicit, weights = ours(query, key, mask=mask, need_weights=True)
            reference, _ = theirs(
                query,
                key,
                key,
                key_padding_mask=~real,
                attn_mask=~causal_mask(T_q, device=device) if causal else None,
                need_weights=False,
            )
        tol = TOLERANCE[dtype]
        assert weights.shape == (N, T_q, T_k)
        for other in (explicit, reference):
            torch.testing.assert_close(
                fused, other, atol=tol, rtol=tol, msg=lambda m, d=dtype: f"{d}: {m}"
            )


def test_the_explicit_function_matches_scaled_dot_product_attention(device):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 8, device=device) for n in (5, 7, 7))
    mask = torch.rand(2, 1, 5, 7, device=device) > 0.3
    mask[..., 0] = True
    out, weights = attention(q, k, v, mask)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, reference)
    assert weights[~mask.expand_as(weights)].eq(0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5, device=device))


@pytest.mark.parametrize("fused", [True, False])
def test_fully_masked_rows_give_zeros_and_finite_gradients(device, fused):
    for dtype in dtypes_on(device):
        torch.manual_seed(0)
        mha = MultiHeadAttention(16, 2).to(device, dtype)
        mha.fused = fused
        x = torch.randn(3, 4, 16, device=device, dtype=dtype, requires_grad=True)
        tokens = torch.tensor([[1, 2, 0, 0], [0, 0, 0, 0], [1, 2, 3, 4]], device=device)
        # Sequence 1 is all padding: each of its queries has nothing to see.
        out, _ = mha(x, mask=attention_mask(padding_mask(tokens)))
        assert out.isfinite().all(), dtype
        # Zero before out_proj, so the output of such a query is out_proj's bias.
        assert torch.allclose(out[1], mha.out_proj.bias.expand(4, 16)), dtype
        out.float().square().sum().backward()
        grads = [x.grad] + [p.grad for p in mha.parameters()]
        assert all(g.isfinite().all() for g in grads), dtype


def test_the_explicit_function_gives_zero_rows_in_every_dtype(device):
    mask = torch.tensor([[True, False], [False, False]], device=device)
    for dtype in dtypes_on(device):
        q = torch.randn(2, 4, device=device).to(dtype).requires_grad_()
        out, weights = attention(q, q, q, mask)
        assert out[1].eq(0).all() and weights[1].eq(0).all(), dtype
        out.float().sum().backward()
        assert q.grad.isfinite().all(), dtype


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    extra=st.integers(1, 5),
    heads=st.sampled_from([1, 2, 4]),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_appending_padding_does_not_change_real_token_outputs(
    lengths, extra, heads, causal, seed
):
    torch.manual_seed(seed)
    mha = MultiHeadAttention(8, heads).eval()
    T = max(lengths)
    tokens = torch.tensor([[i + 1 for i in range(n)] + [0] * (T - n) for n in lengths])
    longer = F.pad(tokens, (0, extra))  # the same batch with more padding
    x_long = torch.randn(len(lengths), T + extra, 8)
    x_long[longer == 0] = torch.randn(8)  # padding vectors need not be zero
    x = x_long[:, :T]
    out, _ = mha(x, mask=attention_mask(padding_mask(tokens), causal=causal))
    out_long, _ = mha(x_long, mask=attention_mask(padding_mask(longer), causal=causal))
    real = padding_mask(tokens)
    torch.testing.assert_close(out[real], out_long[:, :T][real])


def test_weights_per_head_or_averaged(device):
    mha = MultiHeadAttention(16, 4).to(device)
    x = torch.randn(2, 5, 16, device=device)
    _, averaged = mha(x, need_weights=True)
    _, per_head = mha(x, need_weights=True, average_attn_weights=False)
    assert averaged.shape == (2, 5, 5) and per_head.shape == (2, 4, 5, 5)
    torch.testing.assert_close(per_head.mean(dim=1), averaged)
    for fused in (True, False):
        mha.fused = fused
        _, none = mha(x)
        assert none is None, fused


def test_dropout_acts_on_weights_in_training_only(device):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, dropout=0.5).to(device)
    x = torch.randn(2, 6, 16, device=device)
    for fused in (True, False):
        mha.fused = fused
        mha.train()
        first, _ = mha(x)
        second, _ = mha(x)
        assert not torch.allclose(first, second), fused
        mha.eval()
        first, _ = mha(x)
        second, _ = mha(x)
        assert torch.equal(first, second), fused


def test_a_boolean_two_dimensional_mask_broadcasts_over_batch_and_heads(device):
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).to(device).eval()
    x = torch.randn(3, 4, 8, device=device)
    two_d, _ = mha(x, mask=causal_mask(4, device=device))
    four_d, _ = mha(x, mask=attention_mask(causal=True, size=4))
    torch.testing.assert_close(two_d, four_d)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m, x: m(x, mask=torch.ones(2, 1, 5, 6, dtype=torch.bool)),
            r"broadcastable to \(2, 2, 5, 5\).*got \(2, 1, 5, 6\)",
        ),
        (
            lambda m, x: m(x, mask=torch.ones(2, 5, 5, dtype=torch.bool)),
            r"got \(2, 5, 5\); for one mask per sequence.*pass mask\[:, None\]",
        ),
        (
            lambda m, x: m(x, mask=torch.ones(2, 1, 1, 5)),
            "expected a boolean tensor.*got a torch.float32 tensor",
        ),
        (
            lambda m, x: m(x[:, :, :4]),
            r"query: expected shape \(N, T, d_model=8\), got \(2, 5, 4\)",
        ),
        (lambda m, x: m(x, x[:1]), "expected the same batch size N, got 2, 1, 1"),
        (
            lambda m, x: m(x, x, x[:, :3]),
            "key, value: expected the same length T_k, got 5 and 3",
        ),
    ],
    ids=["mask shape", "3-D mask", "mask dtype", "d_model", "batch", "lengths"],
)
def test_bad_input_raises_an_error_that_says_what_was_expected(call, message):
    mha = MultiHeadAttention(8, 2)
    with pytest.raises((TypeError, ValueError), match=message):
        call(mha, torch.randn(2, 5, 8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"d_model": 10, "num_heads": 4},
            "divisible by num_heads, got d_model=10, num_heads=4",
        ),
        ({"d_model": 8, "num_heads": 0}, "num_heads: expected an integer >= 1, got 0"),
        (
            {"d_model": 8, "num_heads": 2, "dropout": 1.0},
            r"dropout: expected a finite number in \[0, 1\), got 1.0",
        ),
    ],
)
def test_bad_sizes_raise_a_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(**kwargs)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((2, 3, 4), (2, 5, 6), (2, 5, 6)), "same last dimension d_k, got 4 and 6"),
        (((2, 3, 4), (2, 5, 4), (2, 6, 4)), "same number of keys T_k, got 5 and 6"),
        (((3, 4), (2, 3, 4), (2, 3, 4)), "same rank >= 2"),
    ],
)
def test_the_explicit_function_rejects_mismatched_shapes(shapes, message):
    q, k, v = (torch.randn(*s) for s in shapes)
    with pytest.raises(ValueError, match=message):
        attention(q, k, v)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1.0, 30.0, 100.0, 300.0, 1000.0]),
    d_k=st.sampled_from([8, 16, 64]),
    t_k=st.integers(1, 9),
)
def test_half_precision_scores_do_not_overflow_where_sdpa_is_finite(
    seed, scale, d_k, t_k
):
    """Inputs large enough that q @ k^T overflows float16: the explicit path
    agrees with scaled_dot_product_attention, masked keys included."""
    gen = torch.Generator().manual_seed(seed)
    q = (torch.randn(2, 3, d_k, generator=gen) * scale).half()
    k = (torch.randn(2, t_k, d_k, generator=gen) * scale).half()
    v = torch.randn(2, t_k, d_k, generator=gen).half()
    mask = torch.rand(2, 3, t_k, generator=gen) < 0.7
    mask[0, 0] = False  # one query with nothing to attend to
    out, weights = attention(q, k, v, mask)
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert out.isfinite().all() and weights.isfinite().all()
    assert fused.isfinite().all()  # the reference is finite: so must we be
    assert torch.allclose(out.float(), fused.float(), atol=2e-3), (
        (out.float() - fused.float()).abs().max()
    )
    assert weights.masked_select(~mask).eq(0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_row_whose_real_scores_overflow_still_ignores_its_masked_keys(dtype):
    """The unmasked scores are far below zero (-inf if computed in float16);
    the masked key's score is not. The answer is the best unmasked key."""
    q = torch.full((1, 1, 8), 300.0, dtype=dtype)
    far = [torch.full((8,), -300.0), torch.full((8,), -290.0), torch.ones(8)]
    k = torch.stack(far)[None].to(dtype)  # (1, 3, 8)
    v = torch.randn(1, 3, 8, generator=torch.Generator().manual_seed(0)).to(dtype)
    mask = torch.tensor([[True, True, False]])
    out, weights = attention(q, k, v, mask)
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert weights[0, 0].tolist() == [0.0, 1.0, 0.0]
    assert torch.equal(out[0, 0], v[0, 1]) and torch.equal(fused[0, 0], v[0, 1])
    mha = MultiHeadAttention(8, 1).to(dtype).eval()  # both paths of the module
    explicit, _ = mha(q, k, k, mask=mask, need_weights=True)  # (T_q, T_k)
    fast, _ = mha(q, k, k, mask=mask)
    assert torch.allclose(explicit.float(), fast.float(), atol=5e-2)
