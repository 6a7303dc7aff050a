"""layers.py, model.py, tasks.py, train.py: shapes, masks, PyTorch, training."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest
import torch

from literate_transformer.attention import MultiHeadAttention
from literate_transformer.layers import (
    DecoderLayer,
    EncoderLayer,
    load_torch_attention,
    load_torch_layer,
)
from literate_transformer.masks import attention_mask, causal_mask, padding_mask
from literate_transformer.model import Transformer
from literate_transformer.tasks import BOS, EOS, PAD, SyntheticTask
from literate_transformer.train import History, TrainingInterrupted, train, warmup_lr

SRC = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]])
TGT = torch.tensor([[1, 7, 6, 5, 0, 0], [1, 12, 11, 10, 9, 8]])


def small_model(**options) -> Transformer:
    torch.manual_seed(0)
    sizes = dict(
        d_model=32, num_heads=4, d_ff=64, dropout=0.0, max_len=16, share_vocab=True
    )
    return Transformer(20, 20, **{**sizes, **options}).eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_shapes_through_every_layer(norm_first, device):
    model = small_model(norm_first=norm_first).to(device)
    src, tgt = SRC.to(device), TGT.to(device)
    src_mask, tgt_mask = model.masks(src, tgt)
    assert src_mask.shape == (2, 1, 1, 5) and tgt_mask.shape == (2, 1, 6, 6)
    x = model.encoder.embedding(src)
    assert x.shape == (2, 5, 32)
    for layer in model.encoder.layers:
        x = layer(x, src_mask)
        assert x.shape == (2, 5, 32)
    y = model.decoder.embedding(tgt)
    for layer in model.decoder.layers:
        y = layer(y, x, tgt_mask, src_mask)
        assert y.shape == (2, 6, 32)
    assert model(src, tgt).shape == (2, 6, 20)


def test_the_decoder_is_causal():
    model = small_model()
    logits = model(SRC, TGT)
    changed = TGT.clone()
    changed[1, 3] = 4  # a future token for positions 0..2
    after = model(SRC, changed)
    torch.testing.assert_close(logits[1, :3], after[1, :3])
    assert not torch.allclose(logits[1, 3:], after[1, 3:], atol=1e-4)


def test_source_padding_changes_nothing():
    model = small_model()
    longer = torch.cat([SRC, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(SRC, TGT), model(longer, TGT))
    # ... nor does the embedding at padded source positions (cross-attention mask)
    memory = model.encoder(SRC, model.masks(SRC, TGT)[0])
    noisy = memory.clone()
    noisy[0, 3:] = torch.randn(2, 32) * 100
    _, tgt_mask = model.masks(SRC, TGT)
    src_mask = attention_mask(padding_mask(SRC))
    clean = model.decoder(TGT, memory, tgt_mask, src_mask)
    assert torch.allclose(
        clean, model.decoder(TGT, noisy, tgt_mask, src_mask), atol=1e-5
    )


def test_encoder_padding_invariance_of_real_positions():
    model = small_model()
    mask = attention_mask(padding_mask(SRC))
    out = model.encoder(SRC, mask)
    longer = torch.cat([SRC, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    out_long = model.encoder(longer, attention_mask(padding_mask(longer)))
    real = padding_mask(SRC)
    torch.testing.assert_close(out[real], out_long[:, :5][real])


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_layers_equal_pytorchs_with_copied_weights(norm_first, activation, device):
    torch.manual_seed(1)
    x, y = torch.randn(2, 5, 32, device=device), torch.randn(2, 6, 32, device=device)
    real_src, real_tgt = padding_mask(SRC.to(device)), padding_mask(TGT.to(device))
    options = dict(batch_first=True, norm_first=norm_first, activation=activation)
    theirs = torch.nn.TransformerEncoderLayer(32, 4, 64, **options).to(device).eval()
    ours = EncoderLayer(32, 4, 64, norm_first=norm_first, activation=activation)
    ours = ours.to(device).eval()
    load_torch_layer(ours, theirs)
    expected = theirs(x, src_key_padding_mask=~real_src)
    got = ours(x, attention_mask(real_src))
    torch.testing.assert_close(got[real_src], expected[real_src])

    theirs = torch.nn.TransformerDecoderLayer(32, 4, 64, **options).to(device).eval()
    ours = DecoderLayer(32, 4, 64, norm_first=norm_first, activation=activation)
    ours = ours.to(device).eval()
    load_torch_layer(ours, theirs)
    expected = theirs(
        y,
        x,
        tgt_mask=~causal_mask(6, device=device),
        tgt_key_padding_mask=~real_tgt,
        memory_key_padding_mask=~real_src,
    )
    got = ours(y, x, attention_mask(real_tgt, causal=True), attention_mask(real_src))
    torch.testing.assert_close(got[real_tgt], expected[real_tgt])


def test_load_torch_layer_refuses_other_sizes():
    theirs = torch.nn.TransformerEncoderLayer(16, 4, 64, batch_first=True)
    with pytest.raises(
        ValueError, match="expected packed attention of width 32, got width 16"
    ):
        load_torch_layer(EncoderLayer(32, 4, 64), theirs)


def test_tied_and_untied_weights():
    tied = small_model()
    shared = tied.decoder.embedding.token.weight
    assert (
        tied.decoder.output.weight is shared
        and tied.encoder.embedding.token.weight is shared
    )
    untied = small_model(tie_embeddings=False, share_vocab=False)
    assert untied.decoder.output.weight is not untied.decoder.embedding.token.weight
    assert untied.encoder.embedding.token.weight is not shared
    torch.manual_seed(0)
    same_size = Transformer(
        20, 20, d_model=32, num_heads=4, d_ff=64
    )  # two vocabularies
    assert same_size.encoder.embedding.token.weight is not (
        same_size.decoder.embedding.token.weight
    )
    with pytest.raises(
        ValueError, match="one vocabulary size for both sides, got 20 and 30"
    ):
        Transformer(20, 30, share_vocab=True)


class ScriptedDecoder(torch.nn.Module):
    """Stands in for the decoder: row n predicts SCRIPT[n][step] at each step."""

    SCRIPT = ((5, EOS, 7, 7, 7, 7), (6, 7, 8, 9, 10, 11), (PAD, 4, EOS, 9, 9, 9))

    def __init__(self) -> None:
        super().__init__()
        self.output = torch.nn.Linear(1, 20, bias=False)  # the vocabulary size

    def forward(self, tgt, memory, tgt_mask, src_mask):
        step = tgt.size(1) - 1
        logits = torch.zeros(tgt.size(0), tgt.size(1), 20)
        for n, row in enumerate(self.SCRIPT):
            logits[n, -1, 3] = 5.0  # the runner-up, chosen when PAD is ruled out
            logits[n, -1, row[step]] = 10.0
        return logits


def test_greedy_decode_ends_rows_at_the_end_token_and_never_predicts_padding():
    model = small_model()
    model.decoder = ScriptedDecoder()
    src = torch.tensor([[5, 6], [7, 8], [9, 0]])
    options = dict(bos_id=BOS, eos_id=EOS, cache=False)  # the script reads T
    out = model.greedy_decode(src, max_len=4, **options)
    assert out.tolist() == [[5, EOS, PAD, PAD], [6, 7, 8, 9], [3, 4, EOS, PAD]]
    assert model.training is False  # small_model() is in eval mode, and stays so
    model.train()
    model.greedy_decode(src, max_len=2, **options)
    assert model.training  # restored


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"bos_id": PAD},
            r"bos_id: expected an id in \[0, 20\) other than the padding id 0",
        ),
        ({"eos_id": 20}, r"eos_id: expected an id in \[0, 20\).*got 20"),
        ({"max_len": 17}, r"max_len: expected an integer in \[1, 16\], got 17"),
    ],
)
def test_greedy_decode_refuses_bad_ids_and_lengths(kwargs, message):
    options = {"bos_id": BOS, "eos_id": EOS, "max_len": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        small_model().greedy_decode(SRC, **options)


def test_a_short_training_run_lowers_the_loss_and_is_deterministic(device):
    task = SyntheticTask("copy", num_symbols=6, max_len=6)

    def run() -> list[float]:
        model = small_model().train()
        history = train(
            model, task, steps=40, seed=3, device=device, progress=False, eval_every=20
        )
        return history.loss, history.token_accuracy

    loss, accuracy = run()
    assert sum(loss[-10:]) / 10 < 0.8 * sum(loss[:10]) / 10, loss
    again_loss, again_accuracy = run()
    assert again_loss == loss and again_accuracy == accuracy  # same seed, same history


def test_tasks_are_right_and_seeded():
    generator = torch.Generator().manual_seed(0)
    for name, rule in [
        ("copy", lambda s: s),
        ("reverse", lambda s: s.flip(0)),
        ("sort", lambda s: s.sort().values),
    ]:
        batch = SyntheticTask(name, num_symbols=5, min_len=2, max_len=7).sample(
            20, generator
        )
        for src, out in zip(batch.src, batch.tgt_out, strict=True):
            symbols = src[src != PAD]
            assert 2 <= len(symbols) <= 7 and symbols.min() >= 3 and symbols.max() < 8
            assert torch.equal(out[: len(symbols)], rule(symbols))
            assert out[len(symbols)] == EOS and (out[len(symbols) + 1 :] == PAD).all()


def test_warmup_schedule_rises_then_decays():
    lrs = [warmup_lr(step, d_model=512, warmup=4000) for step in range(1, 20001)]
    peak = max(range(len(lrs)), key=lrs.__getitem__) + 1
    assert peak == 4000
    assert abs(lrs[3999] - 512**-0.5 * 4000**-0.5) < 1e-12
    assert lrs[7999] == pytest.approx(lrs[3999] / 2**0.5)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Transformer(20, 20, d_model=30, num_heads=4),
            "divisible by num_heads",
        ),
        (
            lambda: Transformer(20, 20, combine="concat"),
            "use tie_embeddings=False with concat",
        ),
        (
            lambda: Transformer(20, 20, pad_id=20),
            r"pad_id: expected an integer in \[0, 19\], got 20",
        ),
        (lambda: SyntheticTask("rotate"), "expected one of .*got 'rotate'"),
        (
            lambda: SyntheticTask(min_len=5, max_len=3),
            "1 <= min_len <= max_len, got 5 and 3",
        ),
        (
            lambda: SyntheticTask().sample(0, torch.Generator()),
            "batch_size: expected an integer >= 1, got 0",
        ),
    ],
)
def test_bad_configuration_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_batches_are_refused():
    model = small_model()
    with pytest.raises(
        ValueError, match=r"src: expected .*N, T >= 1, got shape \(0, 5\)"
    ):
        model(SRC[:0], TGT[:0])
    with pytest.raises(ValueError, match=r"same N, got \(2, 5\) and \(1, 6\)"):
        model(SRC, TGT[:1])
    with pytest.raises(
        ValueError, match=r"tgt: expected ids in \[0, 20\), got ids from 14 to 26"
    ):
        model(SRC, TGT + 14)
    with pytest.raises(ValueError, match="steps: expected an integer >= 1, got 0"):
        train(model, SyntheticTask(), steps=0, progress=False)
    with pytest.raises(ValueError, match=r"max_len >= 21 .*got max_len=16"):
        train(model, SyntheticTask(max_len=20), steps=1, progress=False)


def test_rotary_positions_reach_every_self_attention_and_no_cross_attention():
    model = small_model(positional="rotary")
    assert model.encoder.embedding.position is None  # nothing added to the input
    for layer in [*model.encoder.layers, *model.decoder.layers]:
        assert layer.self_attn.rotary is not None
    assert all(layer.cross_attn.rotary is None for layer in model.decoder.layers)
    assert model(SRC, TGT).shape == (2, 6, 20)
    # Order matters again: permuting the source changes the output.
    permuted = SRC[:, [1, 0, 2, 3, 4]]
    assert not torch.allclose(model(SRC, TGT), model(permuted, TGT), atol=1e-4)
    with pytest.raises(ValueError, match="rotary positions add nothing to concat"):
        small_model(positional="rotary", combine="concat", tie_embeddings=False)


def test_training_on_a_pool_draws_only_from_it_and_records_its_accuracy():
    task = SyntheticTask("copy", num_symbols=6, max_len=6)
    pool = task.sample(3, torch.Generator().manual_seed(5))
    seen = []

    class Spy(Transformer):
        def forward(self, src, tgt):
            seen.append(src.clone())
            return super().forward(src, tgt)

    torch.manual_seed(0)
    model = Spy(9, 9, d_model=16, num_heads=2, d_ff=32, dropout=0.0, max_len=8)
    history = train(
        model, task, steps=4, batch_size=5, pool=pool, eval_every=2, progress=False
    )
    pool_rows = {tuple(row) for row in pool.src.tolist()}
    drawn = [
        tuple(row) for src in seen[:1] for row in src.tolist()
    ]  # first step's batch
    assert set(drawn) <= pool_rows and len(drawn) == 5
    assert len(history.pool_token_accuracy) == len(history.eval_step) == 2


def test_input_dropout_sets_both_input_layers_and_nothing_else():
    model = Transformer(
        14,
        14,
        d_model=16,
        num_heads=2,
        d_ff=32,
        dropout=0.2,
        input_dropout=0.0,
        word_dropout=0.1,
        unk_id=13,
    )
    for embedding in (model.encoder.embedding, model.decoder.embedding):
        assert embedding.dropout.p == 0.0 and embedding.word_dropout.unk_id == 13
    assert model.encoder.layers[0].dropout1.p == 0.2
    default = Transformer(14, 14, d_model=16, num_heads=2, d_ff=32, dropout=0.2)
    assert default.decoder.embedding.dropout.p == 0.2  # the model's rate
    with pytest.raises(TypeError, match=r"^input_dropout: expected a number"):
        Transformer(14, 14, input_dropout={"word_dropout": 0.1})
    with pytest.raises(TypeError, match=r"^scale: expected options of TransformerC"):
        Transformer(14, 14, scale=1.0)
    with pytest.raises(ValueError, match=r"^unk_id: expected an integer in"):
        Transformer(14, 14, word_dropout=0.1, unk_id=14)  # not in the vocabulary


def test_load_torch_attention_gives_the_same_attention_as_pytorch():
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(16, 2, batch_first=True).eval()
    ours = MultiHeadAttention(16, 2).eval()
    load_torch_attention(ours, theirs)
    x = torch.randn(3, 5, 16)
    real = padding_mask(
        torch.tensor([[4, 5, 6, 0, 0], [4, 5, 6, 7, 8], [4, 0, 0, 0, 0]])
    )
    expected = theirs(x, x, x, key_padding_mask=~real, need_weights=False)[0]
    got = ours(x, mask=attention_mask(real))[0]
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="expected packed attention of width 16"):
        load_torch_attention(ours, torch.nn.MultiheadAttention(8, 2))


class StopAfter(SyntheticTask):
    """A task that raises KeyboardInterrupt (as Ctrl-C does) on its nth batch."""

    def __init__(self, calls: int) -> None:
        super().__init__("copy", 6, 1, 6)
        object.__setattr__(self, "calls", calls)

    def sample(self, batch_size, generator):
        if batch_size == 8:  # a training batch, not the held-out one
            object.__setattr__(self, "calls", self.calls - 1)
            if self.calls < 0:
                raise KeyboardInterrupt
        return super().sample(batch_size, generator)


def test_ctrl_c_raises_a_keyboard_interrupt_that_carries_the_history():
    model = small_model()
    with pytest.raises(TrainingInterrupted) as stopped:
        train(model, StopAfter(3), steps=50, batch_size=8, eval_every=2, progress=False)
    assert isinstance(stopped.value, KeyboardInterrupt)
    history = stopped.value.history
    assert history.step == [1, 2, 3] and len(history.loss) == 3
    assert history.eval_step == [2] and not history.complete
    assert history.to_dict()["complete"] is False


@pytest.mark.parametrize(("tie", "share"), [(True, False), (True, True)])
def test_a_tied_model_refuses_an_untied_state_dict_and_keeps_its_tie(tie, share):
    tied = small_model(tie_embeddings=tie, share_vocab=share)
    untied = small_model(tie_embeddings=False).state_dict()
    with pytest.raises(ValueError, match="state_dict: expected one matrix"):
        tied.load_state_dict(untied)
    for assign in (False, True):
        other = small_model(tie_embeddings=tie, share_vocab=share).state_dict()
        tied.load_state_dict(other, assign=assign)
        shared = tied.decoder.embedding.token.weight
        assert tied.decoder.output.weight is shared
        assert (tied.encoder.embedding.token.weight is shared) == share
        assert torch.equal(shared, other["decoder.embedding.token.weight"])


def test_an_untied_model_loads_a_tied_models_weights():
    untied = small_model(tie_embeddings=False)
    tied = small_model().state_dict()
    untied.load_state_dict(tied)
    assert torch.equal(
        untied.decoder.output.weight, untied.decoder.embedding.token.weight
    )
    assert untied.decoder.output.weight is not untied.decoder.embedding.token.weight


def small_run(**options: Any) -> History:
    torch.manual_seed(0)
    model = Transformer(13, 13, d_model=16, num_heads=2, d_ff=32, max_len=11)
    task = SyntheticTask(max_len=4)
    return train(model, task, steps=6, batch_size=4, eval_size=4, **options)


def test_progress_piped_is_one_plain_line_per_evaluation(capsys):
    small_run(eval_every=2)
    shown = capsys.readouterr().err
    assert "\r" not in shown, shown
    assert [line.split()[:2] for line in shown.splitlines()] == [
        ["step", "2/6"],
        ["step", "4/6"],
        ["step", "6/6"],
    ], shown
    assert "loss" in shown and "sequences" in shown, shown
    small_run(eval_every=2, progress=False)
    assert capsys.readouterr().err == ""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_a_bar_redrawn_in_place(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    small_run(eval_every=3)
    shown = terminal.getvalue()
    assert "\r" in shown and "6/6" in shown and "loss=" in shown, shown
    assert "step 3/6" not in shown  # no evaluation lines under a bar


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", "rotary"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoding_with_the_cache_gives_the_ids_of_decoding_without(
    norm_first, positional, device
):
    for seed in range(3):
        torch.manual_seed(seed)
        model = Transformer(
            20,
            20,
            d_model=32,
            num_heads=4,
            d_ff=64,
            max_len=24,
            norm_first=norm_first,
            positional=positional,
        ).to(device)
        src = torch.randint(3, 20, (5, 7), device=device)
        src[1, 4:] = PAD
        options = dict(bos_id=BOS, eos_id=EOS, max_len=24)
        cached = model.greedy_decode(src, **options)
        assert torch.equal(cached, model.greedy_decode(src, cache=False, **options))


def test_the_cache_gives_the_logits_of_the_whole_prefix():
    from literate_transformer.attention import KVCache

    model = small_model(dropout=0.1).eval()
    memory = model.encoder(SRC, model.masks(SRC, TGT)[0])
    src_mask, tgt_mask = model.masks(SRC, TGT)
    whole = model.decoder(TGT, memory, tgt_mask, src_mask)
    caches = [(KVCache(), KVCache(fixed=True)) for _ in model.decoder.layers]
    first = model.decoder(
        TGT[:, :4], memory, tgt_mask[:, :, :4, :4], src_mask, cache=caches
    )
    rest = model.decoder(TGT[:, 4:], memory, tgt_mask[:, :, 4:], src_mask, cache=caches)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole)
    assert caches[0][0].length == 6 and caches[0][1].length == SRC.size(1)
