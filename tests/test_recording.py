"""A recording that survives interruption, and runs on a Dask cluster:
records.write_records with the unit cache, on the tiny experiment of
tests/tiny_lab.py (five seeds, a second each)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lab import records
from tests.tiny_lab import TINY

ROOT = Path(__file__).resolve().parent.parent
START = "from tests.tiny_lab import main; main()"


def environment(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LT_LAB_CACHE": str(tmp / "cache"),
        "LT_TINY_LOG": str(tmp / "log"),
        "PYTHONPATH": str(ROOT),
    }


def record(tmp: Path, folder: str = "records") -> dict:
    """Record the tiny experiment in a process of its own, one unit after
    the other in that process (the interruption tests record two at a time,
    in worker processes); its record."""
    command = [sys.executable, "-c", START, str(tmp / folder), "1"]
    subprocess.run(command, env=environment(tmp), cwd=tmp, check=True, timeout=300)
    return json.loads((tmp / folder / "tiny.json").read_text())


def runs(tmp: Path) -> list[str]:
    """The units that ran: seed, steps (the probe runs 4) and process id."""
    log = tmp / "log"
    return log.read_text().splitlines() if log.is_file() else []


def cached_units(tmp: Path) -> list[Path]:
    return sorted((tmp / "cache" / "units" / "tiny").glob("seed-*.json"))


def same_results(one: dict, other: dict) -> None:
    for field in ("results", "settings", "seeds", "fingerprint"):
        assert one[field] == other[field], field


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    return record(tmp_path_factory.mktemp("uninterrupted"))


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["INT", "KILL"])
def test_an_interrupted_recording_resumes_with_the_missing_units_only(
    tmp_path, how, uninterrupted
):
    command = [sys.executable, "-c", START, str(tmp_path / "records"), "2"]
    hold = tmp_path / "hold"  # seeds 2 to 5 wait while it exists: the
    hold.touch()  # interruption comes before them, however busy the machine
    env = {**environment(tmp_path), "LT_TINY_HOLD": str(hold)}
    process = subprocess.Popen(
        command,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
        # Ctrl-C as at a terminal, even where this test runs with SIGINT
        # ignored (a background job of a script), which a child inherits
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while len(cached_units(tmp_path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, how)  # the recording and its workers, as Ctrl-C does
    hold.unlink()  # what was queued before the interruption may finish now
    process.wait(timeout=60)
    assert process.returncode != 0
    finished = {path.name.split("-")[1] for path in cached_units(tmp_path)}
    assert 2 <= len(finished) < len(TINY.seeds), finished
    assert not (tmp_path / "records" / "tiny.json").exists()
    (tmp_path / "log").unlink()
    resumed = record(tmp_path)
    seeds_run = {line.split()[0] for line in runs(tmp_path) if line.split()[1] == "3"}
    assert seeds_run == {str(s) for s in TINY.seeds} - finished
    same_results(resumed, uninterrupted)


def test_a_finished_recording_runs_again_from_the_cache_alone(tmp_path):
    first = record(tmp_path)
    (tmp_path / "log").unlink()
    again = record(tmp_path, "again")
    assert [line.split()[:2] for line in runs(tmp_path)] == [["0", "4"]]  # the probe
    same_results(first, again)


def test_a_damaged_cache_file_is_named_with_the_command_that_remakes_it(tmp_path):
    record(tmp_path)
    damaged = cached_units(tmp_path)[2]
    damaged.write_text(damaged.read_text()[:20])  # truncated
    command = [sys.executable, "-c", START, str(tmp_path / "again"), "1"]
    result = subprocess.run(
        command, env=environment(tmp_path), cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert f"{damaged}: damaged or truncated" in result.stderr
    assert "nox -s experiments -- tiny" in result.stderr
    assert len(cached_units(tmp_path)) == len(TINY.seeds)  # nothing else lost


def test_a_damaged_record_is_named_with_the_command_that_remakes_it(tmp_path):
    (tmp_path / "positions.json").write_text('{"name": "positions", "res')
    with pytest.raises(ValueError, match="nox -s experiments -- positions"):
        records.load_record("positions", tmp_path)
    (tmp_path / "positions.json").write_text('{"name": "positions"}')
    with pytest.raises(ValueError, match=r"positions.json: damaged \(no \["):
        records.load_record("positions", tmp_path)


def test_a_dask_cluster_makes_the_records_local_processes_make(
    tmp_path, monkeypatch, uninterrupted
):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("LT_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("LT_TINY_LOG", str(tmp_path / "log"))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        workers = set(client.run(os.getpid).values())
        (path,) = records.write_records(
            [TINY], tmp_path, jobs=1, scheduler=cluster.scheduler_address
        )
    same_results(json.loads(path.read_text()), uninterrupted)
    ran = {line.split()[2] for line in runs(tmp_path) if line.split()[1] == "3"}
    assert ran and ran <= {str(pid) for pid in workers}, (ran, workers)


def test_a_unit_keeps_its_cache_key_when_only_wall_times_differ():
    """A fingerprint whose rows hold a wall time (lm-gpt2's, lm-regimes') is
    new in every process: the key must not change with it, or an
    interrupted recording of such an experiment would run every unit again."""
    unit = TINY.unit(3)
    behaviour = {"rows": [{"loss": 0.5, "seconds": 1.25}], "losses": [0.7, 0.5]}
    later = {"rows": [{"loss": 0.5, "seconds": 9.5}], "losses": [0.7, 0.5]}
    changed = {"rows": [{"loss": 0.6, "seconds": 1.25}], "losses": [0.7, 0.5]}
    assert records.unit_path(unit, behaviour) == records.unit_path(unit, later)
    assert records.unit_path(unit, behaviour) != records.unit_path(unit, changed)


def test_a_fresh_record_gives_its_seeds_to_a_recording_with_an_empty_cache(
    tmp_path, monkeypatch
):
    """Held-out seeds added to an experiment whose cache is gone: only the
    new seeds run, the others come from its record; a record with other
    settings gives nothing."""
    monkeypatch.setenv("LT_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LT_TINY_LOG", str(tmp_path / "log"))
    first = json.loads(records.write_records([TINY], tmp_path, jobs=1)[0].read_text())
    for path in cached_units(tmp_path):
        path.unlink()
    (tmp_path / "log").unlink()
    more = replace(TINY, held_out=(*TINY.held_out, 6))
    (path,) = records.write_records([more], tmp_path, jobs=1)
    assert [line.split()[:2] for line in runs(tmp_path)] == [["0", "4"], ["6", "3"]]
    grown = json.loads(path.read_text())
    for seed in map(str, TINY.seeds):
        assert grown["results"][seed] == first["results"][seed]
        assert grown["seconds_by_seed"][seed] == first["seconds_by_seed"][seed]
    assert grown["results"]["6"][0]["value"] == 6 * 3 + 0.5  # run, not copied
    for path in cached_units(tmp_path):
        path.unlink()
    (tmp_path / "log").unlink()
    other = replace(more, settings={"steps": 2, "pause": 0.0})
    records.write_records([other], tmp_path, jobs=1)
    ran = sorted(
        int(line.split()[0]) for line in runs(tmp_path) if line.split()[1] == "2"
    )
    assert ran == sorted(other.seeds)
