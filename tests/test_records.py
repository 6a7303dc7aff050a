"""lab/records.py and lab/registry.py: declarations, records, verification,
staleness. The records themselves are checked against the code they came from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lab import records
from lab.cli import main
from lab.common import between, down, pick, up
from lab.records import (
    Claim,
    Experiment,
    Record,
    check_claims,
    compare,
    load_record,
    plain,
    spell,
    stale,
    with_interval,
)
from lab.registry import (
    EXPERIMENTS,
    facts,
)

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "docs" / "records"


def tiny(**changes) -> Experiment:
    options = dict(
        name="tiny",
        chapter="x.md",
        run=lambda seed, scale: {"value": seed * scale},
        settings={"scale": 2.0},
        development=(0, 1),
        held_out=(2, 3, 4),
        key=(),
        tolerance={"value": 0.1},
    )
    return Experiment(**{**options, **changes})


def test_an_experiment_needs_three_held_out_seeds_apart_from_the_others():
    with pytest.raises(ValueError, match="at least 3 held-out seeds"):
        tiny(held_out=(2, 3))
    with pytest.raises(ValueError, match="apart from the development seeds"):
        tiny(held_out=(1, 2, 3))


def test_every_declared_experiment_has_a_record_made_with_the_current_code():
    for name, experiment in EXPERIMENTS.items():
        record = load_record(name, FOLDER)
        assert stale(record, experiment) is None, stale(record, experiment)
        assert record.seeds == list(experiment.seeds), name
        assert len(experiment.held_out) >= 3, name
        assert record.data["settings"] == plain(experiment.settings), name
        assert sorted(FOLDER.glob("*.json")) == sorted(
            FOLDER / f"{n}.json" for n in EXPERIMENTS
        )


def test_every_record_holds_what_a_record_promises():
    for name in EXPERIMENTS:
        data = load_record(name, FOLDER).data
        assert data["command"] == f"nox -s experiments -- {name}"
        assert set(data["results"]) == {str(s) for s in load_record(name).seeds}
        assert set(data["package"]) == {"version", "source_sha256", "code_sha256"}
        fingerprint = data["fingerprint"]
        assert fingerprint["code_sha256"] == data["package"]["code_sha256"], name
        assert fingerprint["seed"] == data["seeds"]["development"][0], name
        assert fingerprint["rows"] and fingerprint["losses"], name
        environment = set(data["environment"])
        assert {"python", "torch", "numpy", "cpu", "threads"} <= environment
        assert data["environment"]["threads"] == 1 and data["wall_seconds"] > 0
        assert data["date"].endswith("+00:00"), data["date"]


def copy_code(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """A copy of the library and the lab, which records.code_hash then reads."""
    roots = {}
    for name, root in records.CODE_ROOTS.items():
        roots[name] = tmp_path / name
        shutil.copytree(root, roots[name], ignore=shutil.ignore_patterns("*.pyc"))
    monkeypatch.setattr(records, "CODE_ROOTS", roots)
    return roots


def hashes() -> dict[str, str]:
    """Each experiment's code hash, computed once for each lab module (the
    hash depends on the experiment's module only)."""
    modules = {e.module for e in EXPERIMENTS.values()}
    by_module = {module: records.code_hash(module) for module in modules}
    return {name: by_module[e.module] for name, e in EXPERIMENTS.items()}


def test_a_change_to_a_model_module_changes_every_experiments_code(
    tmp_path, monkeypatch
):
    before = hashes()
    roots = copy_code(tmp_path, monkeypatch)
    assert hashes() == before  # a copy hashes as the original
    # The command lines decide no result.
    for command in (
        roots["lab"] / "cli.py",
        roots["literate_transformer"] / "__main__.py",
    ):
        command.write_text(command.read_text() + "ANSWER = 42\n")
    assert hashes() == before
    attention = roots["literate_transformer"] / "attention.py"
    attention.write_text(attention.read_text().replace("bias", "bias ", 1))
    now = hashes()
    assert all(now[name] != before[name] for name in EXPERIMENTS)


def test_a_change_to_one_chapters_experiments_leaves_the_others_code_unchanged(
    tmp_path, monkeypatch
):
    before = hashes()
    roots = copy_code(tmp_path, monkeypatch)
    # The chapter's declarations and claims decide no result: the code their
    # experiments run (lab/dropout_runs.py) does.
    claims = roots["lab"] / "dropout.py"
    claims.write_text(claims.read_text() + "\nANSWER = 42\n")
    assert hashes() == before
    runs = roots["lab"] / "dropout_runs.py"
    runs.write_text(runs.read_text() + "\nANSWER = 42\n")
    now = hashes()
    assert now["positions"] == before["positions"]
    assert now["reverse-demo"] == before["reverse-demo"]
    assert now["dropout-rates"] != before["dropout-rates"]
    assert now["lm-dropout"] != before["lm-dropout"]


def test_a_new_module_or_a_moved_block_leaves_the_code_unchanged(tmp_path, monkeypatch):
    before = hashes()["positions"]
    roots = copy_code(tmp_path, monkeypatch)
    copy = roots["literate_transformer"]
    (copy / "newcomer.py").write_text("import torch\n")  # imported by no experiment
    assert hashes()["positions"] == before
    masks = copy / "masks.py"  # a block moved: only the header's chapters change
    text = masks.read_text()
    header = next(line for line in text.splitlines() if line.startswith("# Explained"))
    masks.write_text(text.replace(header, "# Explained in: docs/elsewhere.md"))
    assert hashes()["positions"] == before
    masks.write_text(text.replace("!= 0", "!= 1", 1))  # the code changes
    assert hashes()["positions"] != before


def test_code_files_follow_the_imports_across_the_library_and_the_lab(
    tmp_path, monkeypatch
):
    library, lab = tmp_path / "literate_transformer", tmp_path / "lab"
    files = {
        "literate_transformer/__init__.py": "",
        "literate_transformer/layer.py": "from literate_transformer import base\n",
        "literate_transformer/base.py": "x = 1\n",
        "literate_transformer/other.py": "",
        "literate_transformer/unrelated.py": "from literate_transformer import base\n",
        "lab/__init__.py": "",
        "lab/common.py": "from literate_transformer.base import x\n",
        "lab/mine.py": "import literate_transformer.other\nfrom lab.helper import f\n",
        "lab/helper.py": "from literate_transformer.layer import f\n",
        "lab/unrelated.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(
        records, "CODE_ROOTS", {"literate_transformer": library, "lab": lab}
    )
    found = records.code_files("lab.mine")
    assert [path.relative_to(tmp_path).as_posix() for path in found] == [
        "lab/common.py",
        "lab/helper.py",
        "lab/mine.py",
        "literate_transformer/base.py",
        "literate_transformer/layer.py",
        "literate_transformer/other.py",
    ]


def test_compare_names_each_result_beyond_its_tolerance():
    experiment = tiny(key=("kind",), tolerance={"value": 0.1, "inner.share": 0.01})
    recorded = [{"kind": "a", "value": 1.0, "inner": {"share": 0.5}}]
    assert compare(experiment, recorded, [dict(recorded[0], value=1.05)]) == []
    far = [{"kind": "a", "value": 1.3, "inner": {"share": 0.52}}]
    problems = compare(experiment, recorded, far)
    assert len(problems) == 2
    assert "value: recorded 1.0000, now 1.3000" in problems[0]
    assert "inner.share" in problems[1]
    assert "row kind=a is now" in compare(experiment, recorded, [{"kind": "b"}])[0]
    assert "2 rows now, 1 recorded" in compare(experiment, recorded, far * 2)[0]


def test_an_unsettled_row_is_held_to_the_range_of_every_seed():
    experiment = tiny(
        key=("kind",), tolerance={"value": 1.0}, unsettled=({"kind": "b"},)
    )
    recorded = [{"kind": "a", "value": 10.0}, {"kind": "b", "value": 10.0}]
    every_seed = [
        recorded,
        [{"kind": "a", "value": 12.0}, {"kind": "b", "value": 90.0}],
    ]
    fresh = [{"kind": "a", "value": 10.5}, {"kind": "b", "value": 60.0}]
    assert compare(experiment, recorded, fresh, every_seed) == []
    # A settled row is held to its own seed, even within the range of all.
    far = [{"kind": "a", "value": 12.0}, {"kind": "b", "value": 91.5}]
    problems = compare(experiment, recorded, far, every_seed)
    assert [p.split(")")[0] for p in problems] == ["tiny (kind=a", "tiny (kind=b"]


def test_verify_fails_on_a_perturbed_record(tmp_path, capsys, monkeypatch):
    for name in EXPERIMENTS:
        shutil.copy(FOLDER / f"{name}.json", tmp_path)
    path = tmp_path / "reverse-demo.json"
    data = json.loads(path.read_text())
    data["results"]["0"][0]["final_tokens"] -= 0.2  # a result the code did not give
    path.write_text(json.dumps(data))
    # The re-run gives the committed record's rows, as on the machine that
    # made it: what is tested is that verify compares the record on disk
    # with the re-run and reports the one result moved. (Re-running the
    # seed for real is what CI's `nox -s experiments -- --verify` does.)
    original = load_record("reverse-demo", FOLDER).data["results"]["0"]
    asked = []

    def reproduce(units, jobs, scheduler=None):
        asked.append(list(units))
        return {(unit.name, unit.seed): (original, 0.0) for unit in units}

    monkeypatch.setattr(records, "run_all", reproduce)
    args = ["experiments", "reverse-demo", "--verify", "--jobs", "1"]
    assert main([*args, "--folder", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert [[(unit.name, unit.seed) for unit in units] for units in asked] == [
        [("reverse-demo", 0)]
    ]
    assert compare(EXPERIMENTS["reverse-demo"], original, original) == []
    (problem,) = captured.err.strip().splitlines()
    assert problem.startswith("reverse-demo") and "final_tokens: recorded" in problem
    assert "1 results beyond their tolerance" in captured.out


def test_verify_names_a_claim_that_a_re_run_breaks():
    experiment = tiny(
        claims=(Claim("value below 3", lambda r: r[0]["value"], below=3),)
    )
    assert records.broken_claims(experiment, 1, [{"value": 2.0}]) == []
    (problem,) = records.broken_claims(experiment, 2, [{"value": 4.0}])
    assert "re-run of seed 2 breaks the claim 'value below 3' (4.0 against < 3)" in (
        problem
    )


def test_verify_re_runs_only_the_verified_rows_and_claims_with_the_rest(
    tmp_path, monkeypatch
):
    def by_variant(seed, variants):
        return [{"variant": v, "value": seed + ord(v)} for v in variants]

    experiment = tiny(
        run=by_variant,
        settings={"variants": ["a", "b"]},
        verified={"variants": ["b"]},
        key=("variant",),
        claims=(
            Claim(
                "b above a",
                lambda rows: (
                    pick(rows, variant="b")["value"] - pick(rows, variant="a")["value"]
                ),
                above=0,
                interval=True,
            ),
        ),
    )
    unit = experiment.verify_unit(records.Numerics())
    assert unit.settings == {"variants": ["b"]} and unit.seed == 0
    results = {str(s): by_variant(s, ["a", "b"]) for s in experiment.seeds}
    data = {field: {} for field in records.RECORD_FIELDS} | {"results": results}
    (tmp_path / "tiny.json").write_text(json.dumps(data))
    for value, expected in ((98.05, []), (99.0, ["value: recorded 98.0000"])):
        monkeypatch.setattr(
            records,
            "run_all",
            lambda units, jobs, scheduler=None, v=value: {
                (u.name, u.seed): ([{"variant": "b", "value": v}], 0.0) for u in units
            },
        )
        problems = records.verify([experiment], tmp_path, 1)
        assert len(problems) == len(expected)
        assert all(e in p for e, p in zip(expected, problems, strict=True))
    # A re-run that breaks the claim: b below the recorded a of its seed.
    monkeypatch.setattr(
        records,
        "run_all",
        lambda units, jobs, scheduler=None: {
            (u.name, u.seed): ([{"variant": "b", "value": 90.0}], 0.0) for u in units
        },
    )
    problems = records.verify([experiment], tmp_path, 1)
    assert any("breaks the claim 'b above a'" in p for p in problems), problems


def test_verify_starts_the_longest_re_run_first_counting_a_verified_part(
    tmp_path, monkeypatch
):
    def by_variant(seed, variants):
        return [{"variant": v, "value": float(seed)} for v in variants]

    # whole: 50 s a seed; part: 120 s a seed, but one of its four variants
    # re-run (30 s); longest: 80 s.
    declared = {"whole": 50.0, "part": 120.0, "longest": 80.0}
    experiments = [
        tiny(
            name=name,
            run=by_variant,
            settings={"variants": ["a", "b", "c", "d"]},
            verified={"variants": ["a"]} if name == "part" else {},
            key=("variant",),
        )
        for name in declared
    ]
    for e in experiments:
        variants = e.verify_unit(records.Numerics()).settings["variants"]
        results = {str(s): by_variant(s, variants) for s in e.seeds}
        data = {field: {} for field in records.RECORD_FIELDS} | {
            "results": results,
            "seconds_by_seed": {"0": declared[e.name]},
        }
        (tmp_path / f"{e.name}.json").write_text(json.dumps(data))
    started = []

    def reproduce(units, jobs, scheduler=None):
        started.extend(unit.name for unit in units)
        return {
            (u.name, u.seed): (by_variant(u.seed, u.settings["variants"]), 0.0)
            for u in units
        }

    monkeypatch.setattr(records, "run_all", reproduce)
    assert records.verify(experiments, tmp_path, 1) == []
    assert started == ["longest", "whole", "part"]


def test_verify_seconds_counts_the_share_of_a_list_or_of_the_runs_default(tmp_path):
    def by_variant(seed, steps, variants=("a", "b", "c", "d")):
        return [{"variant": v, "value": float(seed)} for v in variants]

    cases = {
        "whole": ({}, {}, 120.0),
        "listed": ({"variants": ["a", "b", "c"]}, {"variants": ["a"]}, 40.0),
        "default": ({}, {"variants": ["a"]}, 30.0),  # a fourth of the default
        "other": ({}, {"rate": 0.5}, 120.0),  # not a list: the whole seed
        "shortened": ({}, {"steps": 4}, 48.0),  # four of its ten steps
    }
    for name, (settings, verified, seconds) in cases.items():
        data = {field: {} for field in records.RECORD_FIELDS} | {
            "seconds_by_seed": {"0": 120.0, "1": 999.0}  # seed 0 only counts
        }
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
        e = tiny(
            name=name,
            run=by_variant,
            settings={"steps": 10, **settings},
            verified=verified,
            tolerance={"final_valid": 1.0},
        )
        assert records.verify_seconds(e, tmp_path) == seconds


def test_a_shortened_re_run_compares_the_record_s_first_evaluations(
    tmp_path, monkeypatch
):
    def curve(seed, steps, variants):  # evaluated every 10 steps
        return [
            {
                "variant": v,
                "eval_step": list(range(10, steps + 1, 10)),
                "valid_curve": [
                    100.0 - s / 10 + seed for s in range(10, steps + 1, 10)
                ],
                "final_valid": 100.0 - steps / 10 + seed,
            }
            for v in variants
        ]

    e = tiny(
        run=curve,
        settings={"variants": ["a", "b"], "steps": 50},
        verified={"variants": ["a"], "steps": 20},
        key=("variant",),
        tolerance={"final_valid": 1.0},
        # Holds on the whole runs (95 + seed), not on the first 20 steps.
        claims=(
            Claim("ends below 100", lambda rows: rows[0]["final_valid"], below=97),
        ),
    )
    assert records.shortened(e)
    results = {str(s): curve(s, 50, ["a", "b"]) for s in e.seeds}
    data = {field: {} for field in records.RECORD_FIELDS} | {
        "results": results,
        "seconds_by_seed": {"0": 10.0},
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))
    re_runs = []

    def reproduce(units, jobs, scheduler=None):
        re_runs.extend(dict(u.settings) for u in units)
        return {(u.name, u.seed): (curve(u.seed, **u.settings), 0.0) for u in units}

    monkeypatch.setattr(records, "run_all", reproduce)
    assert records.verify([e], tmp_path, 1) == []  # the claim is not asked
    assert re_runs == [{"variants": ["a"], "steps": 20}]
    assert records.verify_seconds(e, tmp_path) == 10.0 * 1 / 2 * 20 / 50

    results["0"][0]["valid_curve"][1] += 1.5  # step 20, beyond 1.0
    results["0"][1]["valid_curve"][1] += 1.5  # b: not re-run
    path.write_text(json.dumps(data))
    (problem,) = records.verify([e], tmp_path, 1)
    assert "tiny (variant=a) validation at step 20" in problem

    results["0"][0]["eval_step"] = [10, 25, 30, 40, 50]
    path.write_text(json.dumps(data))
    (problem,) = records.verify([e], tmp_path, 1)
    assert "evaluated at steps [10, 20]" in problem


def test_a_shortened_re_run_reads_the_curve_its_declaration_names(
    tmp_path, monkeypatch
):
    def bits(seed, steps):  # evaluated every 10 steps, in bits per byte
        evals = list(range(10, steps + 1, 10))
        curve = [2.0 - s / 100 + seed / 1000 for s in evals]
        return [{"eval_step": evals, "valid_bits": curve, "final_bits": curve[-1]}]

    declared = dict(run=bits, settings={"steps": 50}, verified={"steps": 20})
    with pytest.raises(ValueError, match="'valid_bits' within the tolerance"):
        tiny(**declared, curve=("valid_bits", "final_bits"))  # no such tolerance
    e = tiny(
        **declared, tolerance={"final_bits": 0.01}, curve=("valid_bits", "final_bits")
    )
    results = {str(s): bits(s, 50) for s in e.seeds}
    data = {field: {} for field in records.RECORD_FIELDS} | {"results": results}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))

    def reproduce(units, jobs, scheduler=None):
        return {(u.name, u.seed): (bits(u.seed, **u.settings), 0.0) for u in units}

    monkeypatch.setattr(records, "run_all", reproduce)
    assert records.verify([e], tmp_path, 1) == []
    results["0"][0]["valid_bits"][0] += 0.02  # step 10, beyond 0.01
    path.write_text(json.dumps(data))
    (problem,) = records.verify([e], tmp_path, 1)
    assert "validation at step 10: recorded 1.9200, now 1.9000" in problem


def test_other_numerics_are_for_verify_only(capsys):
    with pytest.raises(SystemExit):
        main(["experiments", "reverse-demo", "--threads", "2"])
    assert "--threads, --no-onednn: expected only with --verify" in (
        capsys.readouterr().err
    )


def test_claims_hold_on_a_seed_beyond_their_bounds_only():
    above = Claim("x", lambda rows: rows[0]["v"], above=0.5)
    both = Claim("x", lambda rows: rows[0]["v"], above=0.0, below=1.0)
    truth = Claim("x", lambda rows: rows[0]["v"] > 2)
    assert above.holds(0.6) and not above.holds(0.5)
    assert both.holds(0.5) and not both.holds(1.0) and not both.holds(-0.1)
    assert truth.holds(True) and not truth.holds(False)
    assert (above.bound(), both.bound(), truth.bound()) == (
        "> 0.5",
        "> 0 and < 1",
        "true",
    )


def test_check_claims_tests_every_seed_and_names_the_failures():
    experiment = tiny(
        claims=(Claim("value below 5", lambda r: r[0]["value"], below=5),)
    )
    data = {
        "name": "tiny",
        "seeds": {"development": [0, 1], "held_out": [2, 3, 4]},
        "results": {str(s): [{"value": 2.0 * s}] for s in range(5)},
    }
    (checked,) = check_claims(Record(data), experiment)
    assert checked.values == {0: 0.0, 1: 2.0, 2: 4.0, 3: 6.0, 4: 8.0}
    assert checked.failed == [3, 4]


def test_an_interval_claim_is_made_of_the_mean_over_the_seeds():
    # Differences 1, 2, 3, 4, 5: mean 3, s = 1.581, t(4) = 2.776: 3 +- 1.963.
    mean, low, high = records.mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0 and abs(high - 4.963) < 1e-3 and abs(low - 1.037) < 1e-3
    claims = (
        Claim("mean above 1", lambda r: r[0]["value"], above=1, interval=True),
        Claim("mean above 1.1", lambda r: r[0]["value"], above=1.1, interval=True),
        Claim("no difference", lambda r: r[0]["value"], contains=0.0, interval=True),
    )
    data = {
        "name": "tiny",
        "seeds": {"development": [0, 1], "held_out": [2, 3, 4]},
        "results": {str(s): [{"value": s + 1.0}] for s in range(5)},
    }
    above_1, above_11, no_difference = check_claims(Record(data), tiny(claims=claims))
    assert above_1.failed == [] and above_11.failed == [0, 1, 2, 3, 4]
    assert no_difference.failed == [0, 1, 2, 3, 4]  # 0 is outside (1.04, 4.96)
    report = records.report_claims(Record(data), tiny(claims=claims))
    assert "mean 3.000 (1.037 to 4.963): holds" in report
    # A re-run of seed 0 that gives -3 widens the interval to include 0 and 1.
    recorded = {str(s): [{"value": s + 1.0}] for s in range(5)}
    (broken,) = records.broken_claims(
        tiny(claims=claims[:1]), 0, [{"value": -3.0}], recorded
    )
    assert "its interval over the seeds" in broken
    assert (
        records.broken_claims(tiny(claims=claims[2:]), 0, [{"value": -3.0}], recorded)
        == []
    )


def test_student_t_quantiles_match_the_tables():
    for df, t in ((1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (20, 2.086)):
        assert abs(records.t_quantile(df) - t) < 1e-3, df
    assert abs(records.t_quantile(10_000) - 1.960) < 1e-3  # the normal's
    with pytest.raises(ValueError, match="two values or more"):
        records.mean_interval([1.0])
    with pytest.raises(ValueError, match="contains= needs interval=True"):
        Claim("x", lambda r: 0.0, contains=0.0)
    with pytest.raises(ValueError, match="needs a bound"):
        Claim("x", lambda r: 0.0, interval=True)


def test_the_helpers_write_seeds_ranges_and_plain_json():
    assert spell([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8"
    assert between([0.031, 0.058]) == "0.03 to 0.06"
    assert between([0.097, 0.189]) == "0.09 to 0.19"  # outwards: holds them all
    assert between([0.5, 0.5]) == "0.50"
    assert between([0.104, 0.555], ".0%", sep=" and ") == "10% and 56%"
    assert up(0.0312) == "0.04" and up(0.29) == "0.29"
    assert down(0.086) == "0.08" and down(0.29) == "0.29"
    assert plain({1: (0.1234567891, "a"), "b": [True, None]}) == {
        "1": [0.123457, "a"],
        "b": [True, None],
    }


def test_facts_come_from_every_record_that_declares_them():
    for name, experiment in EXPERIMENTS.items():
        if experiment.facts is not None:
            found = facts(name)
            assert found and all(isinstance(v, str) for v in found.values()), name


def test_a_missing_record_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nox -s experiments -- positions"):
        load_record("positions", tmp_path)


def test_the_training_losses_are_kept_however_the_loss_is_computed():
    # F.cross_entropy's, kept once (its backward is the same tensor), and a
    # loss computed otherwise (the engine's chunked loss), kept at backward.
    from literate_transformer.engine import linear_cross_entropy

    hidden = torch.randn(8, 4, requires_grad=True)
    weight = torch.randn(10, 4, requires_grad=True)
    targets = torch.randint(0, 10, (8,))
    with records.TrainingLosses() as kept:
        plain_loss = torch.nn.functional.cross_entropy(hidden @ weight.T, targets)
        plain_loss.backward()
        engine_loss = linear_cross_entropy(hidden, weight, None, targets)
        engine_loss.backward()
        with torch.no_grad():  # an evaluation: not a training loss
            torch.nn.functional.cross_entropy(hidden @ weight.T, targets)
    assert kept.values == pytest.approx([plain_loss.item(), engine_loss.item()])
    assert plain_loss.item() == pytest.approx(engine_loss.item(), rel=1e-5)


def test_an_interval_is_written_with_signs_and_without_a_signed_zero():
    assert with_interval([1, 2, 3, 4, 5]) == "+3.0 (+1.0 to +5.0)"
    assert with_interval([-0.02, 0.01, 0.0, -0.01]) == "0.0 (0.0 to 0.0)"
    assert with_interval([-0.02, 0.01, 0.0, -0.01], ".1f") == "0.0 (0.0 to 0.0)"
    assert with_interval([1.0, 1.1, 1.2], ".1f").startswith("1.1 (")
    assert with_interval([-2.0, -2.1, -1.9], "+.2f").startswith("-2.00 (")
