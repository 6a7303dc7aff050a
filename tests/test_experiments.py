"""The chapters' experiments, their sub-commands, and the records machinery."""

from __future__ import annotations

import json

import pytest
import torch

from lab.cli import main
from lab.common import steps_to
from lab.dropout_runs import METHODS, input_dropout_run, lm_dropout
from lab.lm import regimes, word_order
from lab.positional_runs import (
    POSITION_VARIANTS,
    compare_positions,
    lm_positions,
    share_in,
    span,
    summarise,
    train_variant,
)
from literate_transformer.lm import TransformerLM
from literate_transformer.tasks import SyntheticTask
from literate_transformer.train import History


def test_steps_to_finds_the_first_evaluation_over_the_threshold():
    history = History(eval_step=[50, 100, 150], token_accuracy=[0.5, 0.91, 0.95])
    assert steps_to(history) == 100
    assert steps_to(history, threshold=0.99) is None


def test_every_variant_builds_and_trains_a_step():
    task = SyntheticTask("copy", num_symbols=4, max_len=4)
    for variant in POSITION_VARIANTS:
        history = train_variant(variant, task, seed=0, steps=1)
        assert len(history.loss) == 1, variant


def test_an_unknown_variant_is_refused():
    with pytest.raises(ValueError, match=r"variant: expected one of .*got 'sum'"):
        train_variant("sum", SyntheticTask(), seed=0, steps=1)


def test_rows_and_summary_cover_every_combination():
    rows = [
        {**row, "seed": seed}
        for seed in (0, 1)
        for row in compare_positions(
            ["add", "none"], ["copy", "reverse"], seed=seed, steps=2
        )
    ]
    assert len(rows) == 8
    assert {(r["variant"], r["task"], r["seed"]) for r in rows} == {
        (v, t, s) for v in ("add", "none") for t in ("copy", "reverse") for s in (0, 1)
    }
    lines = summarise(rows)
    assert len(lines) == 1 + 4 and lines[1].startswith("copy     add")
    assert "never (0/2)" in lines[1]  # two steps reach no 90% accuracy


def test_the_positions_sub_command_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "rows.json"
    args = ["positions", "--variants", "add", "--seeds", "3", "--steps", "2"]
    assert main([*args, "--json", str(out)]) == 0
    assert "reverse  add" in capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert [r["seed"] for r in rows] == [3]


def test_span_and_share_in_measure_a_known_subspace():
    rows = torch.zeros(5, 8)
    rows[:, :2] = torch.randn(5, 2)  # energy only in the first two coordinates
    basis = span(rows)
    assert basis.shape == (8, 2)
    weight = torch.zeros(3, 8)
    weight[:, 0] = 1.0  # reads coordinate 0 only
    assert abs(share_in(weight, basis) - 1.0) < 1e-9
    weight[:, 5] = 1.0  # and as much from outside the span
    assert abs(share_in(weight, basis) - 0.5) < 1e-9


def test_the_energy_sub_command_prints_one_line_per_seed(capsys):
    assert main(["energy", "--seeds", "0", "1", "--steps", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["seed 0", "seed 1"]


def test_the_lengths_sub_command_tests_each_length(capsys, tmp_path):
    out = tmp_path / "lengths.json"
    args = ["lengths", "--variants", "rotary", "--seeds", "1", "--steps", "2"]
    assert main([*args, "--json", str(out)]) == 0
    assert capsys.readouterr().out.startswith("rotary   tokens right by length  8:")
    rows = json.loads(out.read_text())
    assert list(rows[0]["tokens"]) == ["8", "10", "12"]


def test_the_dropout_sub_command_reports_train_and_held_out(capsys, tmp_path):
    out = tmp_path / "dropout.json"
    args = ["dropout", "--methods", "sum", "word", "--rates", "0.0", "0.5"]
    assert main([*args, "--seeds", "0", "--steps", "2", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["pool", "held", "out", "gap"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["sum", "0.0"],
        ["sum", "0.5"],
        ["word", "0.0"],
        ["word", "0.5"],
    ]
    rows = json.loads(out.read_text())
    assert [r["steps"] for r in rows] == [[2]] * 4


def test_every_dropout_method_trains_and_records_curves():
    for method in METHODS:
        run = input_dropout_run(0.3, seed=0, steps=4, method=method, eval_every=2)
        assert run["steps"] == [2, 4]
        assert len(run["train_curve"]) == len(run["held_out_curve"]) == 2
    with pytest.raises(ValueError, match="method: expected one of"):
        input_dropout_run(0.1, seed=0, steps=1, method="lines")


def test_word_order_sees_no_shuffle_without_positions_in_one_layer():
    # One causal layer without positions: the last position attends to the set
    # of the window's words with its own word as the query, so shuffling the
    # words before it changes nothing. With sinusoids it changes the result.
    torch.manual_seed(0)
    stream = torch.randint(1, 50, (400,))
    for positional, blind in (("none", True), ("sinusoidal", False)):
        model = TransformerLM(
            50,
            d_model=16,
            num_heads=2,
            num_layers=1,
            d_ff=32,
            max_len=64,
            dropout=0.0,
            positional=positional,
        )
        model.train()
        out = word_order(model, stream, seed=3)
        assert model.training  # the mode is given back
        assert set(out) == {"in_order", "shuffled"}
        same = out["shuffled"] == pytest.approx(out["in_order"], rel=1e-5)
        assert same == blind, (positional, out)
        assert out == word_order(model, stream, seed=3)  # the seed fixes the shuffle


def test_the_real_text_runs_record_what_the_registry_reads():
    (row,) = lm_positions(["none"], seed=0, steps=2)
    assert row["variant"] == "none" and row["eval_step"] == [2]
    assert row["in_order"] > 1 and row["shuffled"] > 1
    (row,) = lm_dropout([("sum", 0.5)], seed=0, steps=2)
    assert (row["method"], row["rate"]) == ("sum", 0.5)
    assert set(row) >= {"best_valid", "final_valid", "train", "valid_curve"}


@pytest.mark.parametrize("bad", ["plentiful", ["x"], ("scarce", "y")])
def test_regimes_names_a_regime_it_does_not_know(bad):
    with pytest.raises(ValueError, match="regimes: expected a list of"):
        regimes(bad, seed=0, steps=1)
