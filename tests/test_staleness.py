"""Staleness by behaviour: a record goes stale when what its experiment
computes changes, not when its source text does, and not on another
machine's rounding. Each case runs the fingerprints of a modified copy of
the library and the lab in a process of its own.

The cases run the experiments of SAMPLED, not all of them: the fingerprints
of the one-pass experiments alone take six minutes of one core, and every
case would run them all. SAMPLED holds at least one experiment of every lab
module that declares experiments and of each kind (synthetic, small corpus,
large corpus); the constant's change reaches two of them, both synthetic.
The refactoring runs SAMPLED less its read-once experiment (the dearest
fingerprint, 20-30 s of one core): the constant's change already shows that
one fresh after a change to its code that leaves its behaviour alone."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from lab import records
from lab.records import (
    Numerics,
    Record,
    differences,
    load_record,
    run_unit,
    stale,
)
from lab.registry import EXPERIMENTS

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "docs" / "records"

# One experiment or more of each lab module; the first two build a learned
# position table, the rest never do.
SAMPLED = (
    "positions",
    "lengths",
    "energy",
    "dropout-rates",
    "reverse-demo",
    "lm-demo",
    "lm-masks",
    "lm-one-pass-torch-0.5",
)
READ_ONCE = "lm-one-pass-torch-0.5"  # not run by the refactoring

# Prints {name: why or None} for the records of the experiments named.
REPORT = """
import json, sys
from pathlib import Path
from lab.records import load_record, stale
from lab.registry import EXPERIMENTS
folder, names = Path(sys.argv[1]), sys.argv[2:]
print(json.dumps({n: stale(load_record(n, folder), EXPERIMENTS[n]) for n in names}))
"""


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))


def refactored(package: Path) -> None:
    """A moved function, a renamed local and a new docstring: no behaviour."""
    masks = package / "masks.py"
    text = masks.read_text()
    moved = re.search(r"\ndef key_mask_from_embeddings\(.*?\n(?=\n\ndef )", text, re.S)
    assert moved is not None
    masks.write_text(text.replace(moved[0], "") + "\n" + moved[0].lstrip("\n"))
    attention = package / "attention.py"
    text = attention.read_text()
    start = text.index("    scores = q @ k")
    end = text.index("weights = scores.softmax", start) + len(
        "weights = scores.softmax"
    )
    renamed = re.sub(r"\bscores\b", "logits_", text[start:end])
    attention.write_text(text[:start] + renamed + text[end:])
    edit(
        package / "layers.py",
        '(N, T, d_model) -> same."""',
        '(N, T, d_model) -> same.\n\n    Each position alone.\n    """',
    )


def constant_changed(package: Path) -> None:
    """The learned position table starts at 0.5 instead of 1/sqrt(2)."""
    edit(
        package / "embedding.py",
        "position_std = 2**-0.5 * std * self.scale",
        "position_std = 0.5 * std * self.scale",
    )


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> dict[str, dict[str, str | None]]:
    """The staleness of every record under each change, run side by side."""
    running, names = {}, {}
    for name, change in (("refactored", refactored), ("constant", constant_changed)):
        names[name] = [n for n in SAMPLED if name == "constant" or n != READ_ONCE]
        tmp = tmp_path_factory.mktemp(name)
        for package, root in records.CODE_ROOTS.items():
            shutil.copytree(
                root, tmp / package, ignore=shutil.ignore_patterns("__pycache__")
            )
        change(tmp / "literate_transformer")
        env = {**os.environ, "PYTHONPATH": str(tmp), "LT_LAB_CACHE": str(tmp / "c")}
        command = [sys.executable, "-c", REPORT, str(FOLDER), *names[name]]
        running[name] = (
            subprocess.Popen(
                command, env=env, cwd=tmp, stdout=subprocess.PIPE, text=True
            ),
            tmp,
        )
    found = {}
    for name, (process, tmp) in running.items():
        out, _ = process.communicate(timeout=900)
        assert process.returncode == 0, name
        found[name] = json.loads(out)
        # Every experiment's code hash changed, so every fingerprint ran.
        ran = [p.name for p in (tmp / "c" / "fingerprints").iterdir()]
        assert len(ran) == len(names[name]), ran
    return found


def test_the_sample_covers_every_module_that_declares_experiments():
    modules = {e.module for e in EXPERIMENTS.values()}
    assert {EXPERIMENTS[name].module for name in SAMPLED} == modules
    assert len(set(SAMPLED)) == len(SAMPLED)


def test_a_moved_function_a_renamed_local_and_a_docstring_leave_every_record_fresh(
    verdicts,
):
    refactored = [name for name in SAMPLED if name != READ_ONCE]
    assert verdicts["refactored"] == dict.fromkeys(refactored), verdicts["refactored"]


def test_a_changed_constant_makes_exactly_the_affected_records_stale(verdicts):
    # The sampled experiments with a learned position table; the others never
    # build one.
    affected = {"positions", "lengths"}
    found = verdicts["constant"]
    assert {n for n, why in found.items() if why} == affected, found
    for name in affected:
        assert "now behaves otherwise" in found[name]
        assert f"`nox -s experiments -- {name}`" in found[name]


@pytest.mark.parametrize("name", ["reverse-demo", "energy", "lm-demo"])
def test_a_fingerprint_holds_with_other_numerics(name):
    """Two threads and no oneDNN: another machine's rounding is no change."""
    experiment = EXPERIMENTS[name]
    recorded = load_record(name, FOLDER).data["fingerprint"]
    unit = replace(experiment.probe_unit(), numerics=Numerics(2, onednn=False))
    rows, _, losses = run_unit(unit, losses=True)
    assert rows and losses
    was = {"rows": recorded["rows"], "losses": recorded["losses"]}
    assert differences(was, {"rows": rows, "losses": losses}) == []


def test_differences_name_each_number_beyond_the_tolerance():
    was = {
        "rows": [{"a": 100.0, "text": "x", "seconds": 1.0, "n": None}],
        "losses": [2.0],
    }
    close = {
        "rows": [{"a": 100.005, "text": "y", "seconds": 9.0, "n": None}],
        "losses": [2.0],
    }
    assert differences(was, close) == []
    far = {
        "rows": [{"a": 100.02, "text": "x", "seconds": 1.0, "n": 3}],
        "losses": [2.1],
    }
    assert differences(was, far) == [
        "rows[0].a: 100 -> 100.02",
        "rows[0].n: None -> 3",
        "losses[0]: 2 -> 2.1",
    ]
    assert differences(was, {**was, "losses": [2.0, 2.0]}) == ["losses: 1 values -> 2"]


def test_a_record_without_a_fingerprint_or_with_other_settings_is_stale():
    experiment = EXPERIMENTS["energy"]
    data = load_record("energy", FOLDER).data
    assert stale(Record(data), experiment) is None
    bare = {k: v for k, v in data.items() if k != "fingerprint"}
    assert "no fingerprint" in stale(Record(bare), experiment)
    other = {**data, "settings": {"steps": 401}}
    assert "other settings" in stale(Record(other), experiment)
