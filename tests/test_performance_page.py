"""docs/performance.md: the numbers its prose quotes, filled in from the record
of the bench run (docs/performance-record.json) by benchmarks/report.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks import report

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "docs" / "performance-record.json"
PAGE = ROOT / "docs" / "performance.md"


@pytest.fixture(scope="module")
def record() -> dict:
    found = json.loads(RECORD.read_text(encoding="utf-8"))
    assert found["device"] == "cpu" and not found["errors"]
    return found


def test_every_bench_fact_the_page_quotes_is_computed_from_the_record(record):
    facts = report.facts(record)
    quoted = re.findall(r"\{\{bench:([a-z0-9-]+)\}\}", PAGE.read_text())
    assert quoted and set(quoted) <= set(facts), set(quoted) - set(facts)


def test_the_facts_are_the_records_numbers(record):
    facts = report.facts(record)
    train = report.row(record["rows"], "encoder-train", "35% pad", "ours")
    assert facts["train"] == f"{train['ratio']:.2f}"
    assert facts["train-target"] == (
        "met" if train["status"] == "PASS" else "**missed**"
    )
    explicit = report.row(
        record["rows"], "memory", "T=2048 N=4 padding fwd float32", "ours MHA explicit"
    )
    assert facts["memory-explicit"] == f"{explicit['value'] / 2**20:.0f}"
    low, high = (float(x) for x in facts["train-repeats"].split(" to "))
    assert low <= float(facts["train-repeats-median"]) <= high


def test_a_missing_row_is_an_error_not_a_silent_blank(record):
    with pytest.raises(KeyError, match="0 rows in the record"):
        report.row(record["rows"], "encoder-train", "99% pad", "ours")
