"""The chapters' prose holds no control characters.

A `\\t` typed where `\\text` was meant becomes a tab once a tool unescapes it,
and the formula is garbled without an error anywhere (it happened in masks.md).
Tabs and other control characters have no business in the prose of a page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools import chapters

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def prose_control_characters(text: str) -> list[str]:
    """'line N: U+XXXX' for each control character outside code fences."""
    inside = {
        number
        for fence in chapters.read_fences(text)
        for number in range(fence.line, fence.end + 1)
    }
    return [
        f"line {number}: U+{ord(found[0]):04X}"
        for number, line in enumerate(text.split("\n"), start=1)
        if number not in inside and (found := CONTROL.search(line))
    ]


def test_the_check_finds_a_tab_in_prose_and_ignores_one_in_code():
    text = "# A\n\n$Z_\text{real}$\n\n```text\na\tb\n```\n"
    assert prose_control_characters(text) == ["line 3: U+0009"]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_no_control_characters_in_the_prose(path: Path):
    found = prose_control_characters(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: {found}"
