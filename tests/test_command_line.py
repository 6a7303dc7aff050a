"""The command line checks every option before it runs anything.

A bad value exits with argparse's status 2 and a message that names the flag;
nothing is trained first. Ctrl-C during training writes what was recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import lab.cli
import literate_transformer.__main__ as command_line
from literate_transformer import lm_command
from literate_transformer.__main__ import main
from literate_transformer.cli import config_fields
from literate_transformer.text import load_corpus

ROOT = Path(__file__).resolve().parent.parent

BAD_TRAIN_FLAGS = [
    (["--num-heads", "0"], "--num-heads: expected an integer >= 1, got 0"),
    (["--num-heads", "two"], "--num-heads: expected an integer, got 'two'"),
    (["--num-heads", "5"], "--d-model, --num-heads: expected d_model divisible"),
    (["--d-model", "9", "--num-heads", "3"], "--d-model: expected an even"),
    (["--d-model", "1.5"], "--d-model: expected an integer, got '1.5'"),
    (["--symbols", "0"], "--symbols: expected an integer >= 1"),
    (["--min-len", "5", "--max-len", "3"], "--min-len, --max-len: expected"),
    (["--steps", "-3"], "--steps: expected an integer >= 1, got -3"),
    (["--batch-size", "0"], "--batch-size: expected an integer >= 1"),
    (["--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
    (["--num-encoder-layers", "0"], "--num-encoder-layers: expected an integer >="),
    (["--num-decoder-layers", "0"], "--num-decoder-layers: expected an integer >="),
    (["--activation", "swish"], "--activation: invalid choice: 'swish'"),
    (["--word-dropout", "0.1"], "--word-dropout"),
    (["--d-ff", "0"], "--d-ff: expected an integer >= 1"),
    (["--warmup", "0"], "--warmup: expected an integer >= 1"),
    (["--dropout", "1"], "--dropout: expected a finite number in [0, 1)"),
    (["--dropout", "nan"], "--dropout: expected a finite number"),
    (["--lr-factor", "-1"], "--lr-factor: expected a finite number > 0, got -1"),
    (["--lr-factor", "0"], "--lr-factor: expected a finite number > 0, got 0"),
    (["--label-smoothing", "2"], "--label-smoothing: expected a finite number"),
    (["--device", "tpu"], "--device: expected a device such as 'cpu'"),
    (["--task", "rotate"], "--task: invalid choice: 'rotate'"),
    (["--json", "no/such/folder/h.json"], "--json: expected a file in an existing"),
    (["--json", "."], "--json: expected a file, got the folder '.'"),
]
if not torch.cuda.is_available():
    BAD_TRAIN_FLAGS.append((["--device", "cuda"], "--device: expected a device"))


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """main(argv)'s exit status and standard error."""
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize(("flags", "message"), BAD_TRAIN_FLAGS)
def test_a_bad_train_option_exits_2_naming_the_flag_before_training(
    flags, message, capsys, monkeypatch
):
    trained = []
    monkeypatch.setattr(command_line, "train", lambda *a, **k: trained.append(1))
    status, err = run_main(["train", "--steps", "100000", *flags], capsys)
    assert status == 2, err
    assert message in err, err
    assert "usage:" in err and "Traceback" not in err, err
    assert not trained, "training started before the options were checked"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["experiments", "sizes"], "NAME: expected some of"),
        (["experiments", "--jobs", "0"], "--jobs: expected an integer >= 1"),
        (["positions", "--seeds", "1", "-2"], "--seeds: expected an integer >= 0"),
        (["positions", "--steps", "0"], "--steps: expected an integer >= 1"),
        (["positions", "--variants", "sum"], "--variants: invalid choice"),
        (["energy", "--json", "no/such/x.json"], "--json: expected a file in"),
        (["lengths", "--steps", "ten"], "--steps: expected an integer, got 'ten'"),
        (["dropout", "--rates", "0.1", "1.5"], "--rates: expected a finite number"),
        (["dropout", "--methods", "all"], "--methods: invalid choice"),
    ],
)
def test_a_bad_experiment_option_exits_2_naming_the_flag(argv, message, capsys):
    try:
        status = lab.cli.main(argv)  # python -m lab
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2 and message in err, err


def test_a_writable_json_path_is_tried_but_not_left_behind(tmp_path, capsys):
    out = tmp_path / "history.json"
    status, err = run_main(
        ["train", "--task", "copy", "--steps", "2", "--quiet", "--json", str(out)],
        capsys,
    )
    assert status == 0, err
    assert json.loads(out.read_text())["complete"] is True


def test_a_read_only_json_file_is_refused(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes read-only files: the refusal cannot be seen")
    out = tmp_path / "history.json"
    out.write_text("{}")
    out.chmod(0o444)
    status, err = run_main(["train", "--json", str(out)], capsys)
    assert status == 2 and "--json: expected a writable file" in err, err


def test_ctrl_c_writes_the_history_so_far_marked_incomplete(tmp_path):
    out = tmp_path / "history.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "literate_transformer",
            "train",
            "--task",
            "copy",
            "--steps",
            "100000",
            "--d-model",
            "16",
            "--d-ff",
            "32",
            "--eval-every",
            "1",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        # A shell that starts a command in the background without job control
        # makes it ignore Ctrl-C, and its children inherit that: Python then
        # never raises KeyboardInterrupt and the run would go on for ever.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    shown = ""
    while shown.count("/100000") < 3:  # progress lines: a few steps are done
        character = process.stderr.read(1)
        assert character, f"the run ended early: {shown}"
        shown += character
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=60) == 130, rest
    assert "interrupted after" in rest and "Traceback" not in rest, rest
    history = json.loads(out.read_text())
    assert history["complete"] is False
    assert 3 <= len(history["step"]) < 100000, len(history["step"])
    assert len(history["loss"]) == len(history["step"])


BAD_LM_FLAGS = [
    (["--num-heads", "5"], "--d-model, --num-heads: expected d_model divisible"),
    (["--combine", "concat"], "--tie-embeddings: the output projection has width"),
    (["--max-len", "0"], "--max-len: expected an integer >= 1, got 0"),
    (["--length", "100"], "--length: expected at most --max-len=64"),
    (["--embedding-scale", "0"], "--embedding-scale: expected a finite number > 0"),
    (["--position-init-std", "0.1"], "--positional, --position-init-std: expected"),
    (["--init", "xavier"], "--init: invalid choice: 'xavier'"),
    (["--top-k", "5000"], "--top-k: expected fewer than the"),
    (["--top-k", "0"], "--top-k: expected an integer >= 1, got 0"),
    (["--prompt", "  "], "--prompt: expected at least one word"),
    (["--positional", "relative"], "--positional: invalid choice"),
    (["--temperature", "0"], "--temperature: expected a finite number > 0"),
    (["--length", "0"], "--length: expected an integer >= 1"),
    (["--json", "no/such/folder/run.json"], "--json: expected a file in an existing"),
    (["--weight-decay", "0.1"], "--weight-decay: expected 0 with --optimizer adam"),
    (["--weight-decay", "-1"], "--weight-decay: expected a finite number >= 0"),
    (["--optimizer", "sgd"], "--optimizer: invalid choice"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_LM_FLAGS)
def test_a_bad_lm_option_exits_2_naming_the_flag_before_training(
    flags, message, capsys, monkeypatch
):
    trained = []
    monkeypatch.setattr(lm_command, "train_lm", lambda *a, **k: trained.append(1))
    status, err = run_main(["lm", "--steps", "100000", *flags], capsys)
    assert status == 2, err
    assert message in err, err
    assert not trained, "training started before the options were checked"


def test_lm_trains_evaluates_samples_and_writes_a_record(tmp_path, capsys):
    out = tmp_path / "run.json"
    argv = ["lm", "--steps", "4", "--eval-every", "2", "--d-model", "16"]
    argv += ["--d-ff", "32", "--words", "5", "--prompt", "The zyzzyva statement"]
    status = main([*argv, "--json", str(out)])
    shown = capsys.readouterr()
    assert status == 0, shown.err
    assert shown.out.count("valid perplexity") == 2  # steps 2 and 4
    assert "test perplexity" in shown.out and "The <unk> statement" in shown.out
    assert "read as <unk>: ['zyzzyva']" in shown.err
    record = json.loads(out.read_text())
    assert record["settings"]["steps"] == 4 and record["settings"]["d_model"] == 16
    assert record["history"]["eval_step"] == [2, 4]
    assert len(record["history"]["loss"]) == 4
    assert record["best_valid"] == min(record["history"]["valid_perplexity"])
    assert 1 < record["test_perplexity"] < 10 * len(load_corpus().vocab)
    assert record["text"].startswith("The <unk> statement")
    assert len(record["text"].split()) >= 3 + 1  # some of the 5 words may be "\n"
    assert record["environment"]["torch"] == torch.__version__
    bits = record["test_bits_per_byte"]
    corpus = load_corpus()
    tokens_per_byte = corpus.tokens("test") / corpus.sizes["test"]
    expected = math.log(record["test_perplexity"]) / math.log(2) * tokens_per_byte
    assert bits == pytest.approx(expected)
    assert len(record["valid_bits_per_byte"]) == 2


def test_lm_reads_windows_with_document_labels_unless_told_not_to(tmp_path, capsys):
    base = ["lm", "--steps", "2", "--eval-every", "2", "--d-model", "16"]
    base += ["--d-ff", "32", "--words", "3", "--quiet"]
    records = {}
    for flag in ("--documents", "--no-documents"):
        out = tmp_path / f"{flag}.json"
        assert main([*base, flag, "--json", str(out)]) == 0, capsys.readouterr().err
        records[flag] = json.loads(out.read_text())
    assert records["--documents"]["settings"]["documents"] is True
    assert records["--no-documents"]["settings"]["documents"] is False
    assert records["--documents"]["test_perplexity"] != pytest.approx(
        records["--no-documents"]["test_perplexity"], rel=1e-6
    )  # test windows that cross an end are read otherwise


def test_lm_trains_on_the_whole_documentation_in_byte_pairs(tmp_path, capsys):
    out = tmp_path / "run.json"
    argv = ["lm", "--corpus", "docs", "--steps", "2", "--eval-every", "2"]
    argv += ["--d-model", "16", "--d-ff", "32", "--words", "5"]
    argv += ["--prompt", "The zyzzyva statement", "--json", str(out)]
    status = main(argv)
    shown = capsys.readouterr()
    assert status == 0, shown.err
    assert "<unk>" not in shown.out + shown.err  # byte pairs spell any word
    record = json.loads(out.read_text())
    assert record["settings"]["corpus"] == "docs"
    assert record["text"].startswith("The zyzzyva statement")
    assert 3 < record["test_bits_per_byte"] < 20  # a uniform guess: about 3.4


def test_lm_help_runs_as_a_module():
    shown = subprocess.run(
        [sys.executable, "-m", "literate_transformer", "lm", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--positional" in shown.stdout and "--json" in shown.stdout


@pytest.mark.parametrize("command", ["lm", "train"])
def test_help_shows_every_option_with_its_default(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())  # unwrapped
    commands = argparse.ArgumentParser().add_subparsers()
    command_line.add_train_parser(commands)
    lm_command.add_lm_parser(commands)
    for action in commands.choices[command]._actions:
        if action.dest == "help":
            continue
        flag = action.option_strings[-1]
        assert flag in shown, flag
        assert f"(default: {action.default})" in shown, (flag, action.default)


def test_every_config_field_is_a_flag_and_reaches_the_model():
    parser = argparse.ArgumentParser()
    lm_command.add_lm_parser(parser.add_subparsers())
    flags = ["--norm-first", "--activation", "gelu_tanh", "--positional", "learned"]
    flags += ["--no-tie-embeddings", "--num-layers", "3", "--embedding-scale", "1"]
    flags += ["--no-output-bias", "--word-dropout", "0.1", "--max-len", "32"]
    args = parser.parse_args(["lm", *flags])
    model = lm_command.build_lm(args, 50)
    wanted = replace(
        lm_command.LM_BASE,
        norm_first=True,
        activation="gelu_tanh",
        positional="learned",
        tie_embeddings=False,
        num_layers=3,
        embedding_scale=1.0,
        output_bias=False,
        word_dropout=0.1,
        max_len=32,
    )
    assert model.config == wanted
    assert len(model.layers) == 3 and model.output.bias is None
    assert model.embedding.word_dropout is not None  # unk_id: the corpus's UNK
    given = {
        action.dest
        for action in parser._subparsers._group_actions[0].choices["lm"]._actions
    }
    assert set(config_fields(lm_command.LM_BASE, lm_command.LM_FIXED)) <= given
    assert not set(lm_command.LM_FIXED) & given  # the corpus's ids are not options
