"""The bench's own arithmetic: the FLOPs it counts, the padding of its
batches, the decoding that must run its full length, the attention case
that switches layouts, the peers that must compute one function, and how
targets are matched to rows. Its timings are not tested:
they belong to `nox -s bench`."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import literate_transformer.engine as engine_module
from benchmarks.cases import (
    BOS_ID,
    EOS_ID,
    PADDED_LAYOUT,
    PADDINGS,
    PER_SEQUENCE,
    TARGETS,
    VARLEN_LENGTHS,
    VOCAB,
    EncoderStack,
    apply_targets,
    bench_varlen,
    decode_model,
    encoder_train_flops,
    random_lengths,
    set_fused,
)
from benchmarks.measure import FLOAT32, Row, Settings
from benchmarks.peers import (
    HF,
    LM_BATCH,
    LM_SEQ,
    LM_SIZES,
    LM_VOCAB,
    NANO,
    OURS,
    adamw,
    check_same_function,
    lm_peers,
    lm_step,
    lm_train_flops,
    step_products,
    versus,
    windows,
)
from benchmarks.report import met_with, span
from literate_transformer.layers import EncoderLayer
from literate_transformer.lm import GPT2_DESIGN, TransformerLM


@pytest.mark.parametrize("lengths", [[5, 9, 16], [1, 32], [7]])
def test_the_real_token_flops_are_what_flop_counter_mode_counts(lengths):
    # Each sequence alone, without padding, through the explicit attention
    # (FlopCounterMode does not count the CPU's fused attention kernel), with
    # the input requiring a gradient, so that every backward matmul runs.
    torch.manual_seed(0)
    d, d_ff, layers = 32, 48, 2
    stack = EncoderStack([EncoderLayer(d, 4, d_ff, 0.1) for _ in range(layers)])
    set_fused(stack.train(), False)
    counted = 0
    for n in lengths:
        x = torch.randn(1, n, d, requires_grad=True)
        with FlopCounterMode(display=False) as counter:
            stack(x, torch.ones(1, n, dtype=torch.bool)).square().mean().backward()
        counted += counter.get_total_flops()
    assert counted == encoder_train_flops(lengths, d, d_ff, layers)


def test_a_padded_batch_counts_only_its_real_tokens():
    alone = encoder_train_flops([10], 16, 32, 1) + encoder_train_flops([6], 16, 32, 1)
    assert encoder_train_flops([10, 6], 16, 32, 1) == alone
    assert encoder_train_flops([10, 6], 16, 32, 1) < encoder_train_flops(
        [10, 10], 16, 32, 1
    )


@pytest.mark.parametrize("fraction", PADDINGS)
def test_a_batch_has_the_padding_its_case_is_named_after(fraction):
    lengths = random_lengths(32, 128, torch.Generator().manual_seed(1), fraction)
    assert int(lengths.min()) >= 1 and int(lengths.max()) <= 128
    padding = 1 - float(lengths.sum()) / (32 * 128)
    assert padding == pytest.approx(fraction, abs=0.005)
    assert len(set(lengths.tolist())) > 1 or fraction == 0.0  # not one length


def test_targets_go_to_their_case_only():
    cases = ["N=32 T=128 0% pad float32", "N=32 T=128 60% pad float32"]
    rows = [
        Row("encoder-train", case, "ours", seconds=1.0, ratio=1.05) for case in cases
    ]
    apply_targets(rows)
    zero, sixty = rows
    assert (zero.target, zero.status) == (1.0, "PASS")  # no padding: >= 1.0
    assert (sixty.target, sixty.status) == (None, "")  # " 0% pad" is not "60% pad"
    assert any(bench == "flops" for bench, *_ in TARGETS)


def test_the_decode_case_decodes_every_token_with_and_without_the_cache():
    model = decode_model("cpu", max_len=24)
    src = torch.randint(3, VOCAB, (4, 10), generator=torch.Generator().manual_seed(0))
    options = dict(bos_id=BOS_ID, eos_id=EOS_ID, max_len=24)
    cached = model.greedy_decode(src, **options)
    assert cached.shape == (4, 24) and not (cached == EOS_ID).any()
    assert torch.equal(cached, model.greedy_decode(src, cache=False, **options))


def test_a_span_of_values_that_round_alike_is_one_number():
    assert span([6.46, 6.54], 1) == "6.5"
    assert span([1.071, 1.381, 1.2], 2) == "1.07 to 1.38"


def test_a_target_of_both_masks_says_which_one_met_it():
    assert met_with({"padding": True, "causal": True}) == "met"
    assert met_with({"padding": False, "causal": False}) == "**missed**"
    assert met_with({"padding": False, "causal": True}) == (
        "met with the causal mask only"
    )


def test_the_varlen_case_times_both_layouts_and_puts_the_switch_back():
    settings = Settings(
        device="cpu",
        quick=True,
        repeats=1,
        warmup=1,
        min_time=0.0,
        lengths=(),
        long_length=0,
        only=frozenset({"varlen"}),
    )
    saved = engine_module.PER_SEQUENCE_FROM
    rows = bench_varlen(settings, FLOAT32)
    assert saved == engine_module.PER_SEQUENCE_FROM
    assert [(r.case.split()[0], r.name) for r in rows] == [
        (f"T={t}", name)
        for t in VARLEN_LENGTHS
        for name in (PADDED_LAYOUT, PER_SEQUENCE)
    ]


def test_the_language_model_flops_are_what_flop_counter_mode_counts():
    # The explicit attention multiplies every query-key pair, the causal
    # mask applied afterwards: causal=False counts what it computes.
    torch.manual_seed(0)
    n, t, d, d_ff, vocab = 3, 8, 16, 40, 50
    config = dataclasses.replace(
        GPT2_DESIGN, d_model=d, num_heads=2, num_layers=2, d_ff=d_ff, max_len=t
    )
    model = set_fused(TransformerLM(vocab, config).train(), False)
    ids = torch.randint(0, vocab, (n, t))
    with FlopCounterMode(display=False) as counter:
        logits = model(ids)
        F.cross_entropy(logits.flatten(0, 1), ids.flatten()).backward()
    full = lm_train_flops(n, t, d, d_ff, 2, vocab, causal=False)
    assert counter.get_total_flops() == full
    needed = lm_train_flops(n, t, d, d_ff, 2, vocab)  # the causal pairs only
    assert needed == full - 3 * 2 * 4 * d * n * (t * t - t * (t + 1) // 2)


def test_the_products_alone_are_those_of_our_training_step():
    # Operator by operator, the same multiply-adds as our step: what
    # FlopCounterMode counts (it counts no in-place addmm_, so the output
    # weight's gradient, accumulated block by block, is missing from both).
    size = "d_model=64"
    with FlopCounterMode(display=False) as alone:
        step_products(size, "cpu", torch.float32)()
    model = lm_peers(size, "cpu")[OURS].train()
    ids, targets = windows(LM_BATCH, "cpu", torch.Generator().manual_seed(1))
    with FlopCounterMode(display=False) as step:
        lm_step(model, adamw(model), FLOAT32, "cpu", ids, targets)
    assert alone.get_flop_counts()["Global"] == step.get_flop_counts()["Global"]
    d, _, layers, d_ff = LM_SIZES[size]
    full = lm_train_flops(LM_BATCH, LM_SEQ, d, d_ff, layers, LM_VOCAB, causal=False)
    accumulated = 2 * LM_BATCH * LM_SEQ * d * LM_VOCAB  # the addmm_ products
    assert alone.get_total_flops() == full - accumulated


def test_the_peers_compute_the_same_function_and_decode_the_same_ids():
    models = lm_peers("d_model=64", "cpu")  # raises if their logits differ
    prompt = torch.randint(3, LM_VOCAB, (2, 5), generator=torch.Generator())
    ours = models[OURS].generate(prompt, 12)
    assert ours.shape == (2, 17)
    assert torch.equal(models[HF].greedy(prompt, 12), ours)
    assert torch.equal(models[NANO].greedy(prompt, 12), ours)
    models[NANO].load_state_dict(  # a peer that differs is refused
        {**models[NANO].state_dict(), "ln_f.bias": torch.ones(64)}
    )
    with pytest.raises(RuntimeError, match="differ"):
        check_same_function("d_model=64", models)


def test_a_row_against_a_second_peer_takes_that_peers_time():
    rows = [
        Row("lm-train", "c", "ours", seconds=2.0, ratio=1.5, baseline="ref"),
        Row("lm-train", "c", "ref", seconds=3.0, ratio=1.0, baseline="ref"),
        Row("lm-train", "c", "hf", seconds=5.0, ratio=0.6, baseline="ref"),
    ]
    extra = versus(rows, "ours", "hf")[-1]
    assert (extra.name, extra.baseline, extra.ratio) == ("ours vs hf", "hf", 2.5)
    apply_targets([extra])  # no target for case "c"
    assert extra.status == ""
