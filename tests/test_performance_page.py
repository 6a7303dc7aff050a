"""docs/performance.md: its statements about the recorded run hold for the
record the page shows (docs/performance-record.json, written by nox -s bench)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

RECORD = Path(__file__).parent.parent / "docs" / "performance-record.json"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    assert record["device"] == "cpu" and not record["errors"]
    return record["rows"]


def row(rows: list[dict], bench: str, case: str, name: str) -> dict:
    """The one timed (or memory) row of a candidate in a case."""
    (found,) = [
        r
        for r in rows
        if (r["bench"], r["name"]) == (bench, name)
        and case in r["case"]
        and (r["seconds"] is not None or r["unit"] == "bytes")
    ]
    return found


def test_fused_attention_against_the_explicit_path_at_256(rows):
    for mask in ("padding", "causal"):
        case = f"T=256 N=32 {mask} fwd float32"
        fused = row(rows, "attention", f"{case} [module]", "ours MHA fused")
        kernel = row(
            rows, "attention", f"{case} [kernel]", "F.scaled_dot_product_attention"
        )
        assert 7.0 < kernel["ratio"] < 8.5, (mask, kernel["ratio"])  # "7 to 8"
        assert round(fused["ratio"], 1) == 4.6 and fused["status"] == "PASS"
        torch_mha = row(rows, "attention", f"{case} [module]", "nn.MultiheadAttention")
        assert fused["seconds"] < torch_mha["seconds"]


def test_explicit_attention_memory_peaks_at_hundreds_of_mib_and_fused_at_tens(rows):
    case = "T=2048 N=4 padding fwd float32"
    explicit = row(rows, "memory", case, "ours MHA explicit")["value"] / 2**20
    fused = row(rows, "memory", case, "ours MHA fused")["value"] / 2**20
    assert round(explicit) == 780 and round(fused) == 20


def test_the_encoder_ratios_and_targets_are_as_the_page_says(rows):
    train = row(rows, "encoder-train", "35% pad", "ours")
    assert round(train["ratio"], 2) == 1.02 and train["status"] == "MISS"
    infer = row(rows, "encoder-infer", "35% pad", "ours")
    assert round(infer["ratio"], 2) == 1.16 and infer["status"] == "MISS"
    for name in ("ours", "nn"):
        share = row(rows, "flops", "encoder train step", name)["ratio"]
        assert 0.3 < share < 0.37, (name, share)  # "about a third"


def test_single_repeats_of_the_training_step_spread_wider_than_the_margin(rows):
    ours = row(rows, "encoder-train", "35% pad", "ours")["samples"]
    theirs = row(rows, "encoder-train", "35% pad", "nn")["samples"]
    ratios = [b / a for a, b in zip(ours, theirs, strict=True)]
    assert (round(min(ratios), 2), round(max(ratios), 2)) == (0.94, 1.12)
    assert round(statistics.median(ratios), 2) == 0.97
