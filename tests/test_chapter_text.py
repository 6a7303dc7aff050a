"""The chapters' prose holds no control characters, and no stray headings.

A `\\t` typed where `\\text` was meant becomes a tab once a tool unescapes it,
and the formula is garbled without an error anywhere (it happened in masks.md).
Tabs and other control characters have no business in the prose of a page.

Python-Markdown takes a line that starts with `#` for a heading, space or not:
an issue number such as `#41508` wrapped to the start of a line becomes a
heading in the middle of a sentence (it happened in masks.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools import chapters

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
CHAPTERS = sorted((ROOT / "docs").glob("*.md"))
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
STRAY_HEADING = re.compile(r"^#+[^#\s]")  # "#41508 ...", not "# Title"


def code_lines(text: str) -> set[int]:
    """The numbers of the lines inside code fences, fences included."""
    return {
        number
        for fence in chapters.read_fences(text)
        for number in range(fence.line, fence.end + 1)
    }


def prose_control_characters(text: str) -> list[str]:
    """'line N: U+XXXX' for each control character outside code fences."""
    inside = code_lines(text)
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


def stray_headings(text: str) -> list[str]:
    """'line N: ...' for each prose line that starts with # but no space."""
    inside = code_lines(text)
    return [
        f"line {number}: {line[:40]}"
        for number, line in enumerate(text.split("\n"), start=1)
        if number not in inside and STRAY_HEADING.match(line)
    ]


def test_the_check_finds_a_wrapped_issue_number_and_ignores_titles_and_code():
    text = "# A\n\n## B\n\nafter issues\n#41508 and others.\n\n```python\n#x\n```\n"
    assert stray_headings(text) == ["line 6: #41508 and others."]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_no_line_of_prose_starts_with_a_hash_that_is_not_a_heading(path: Path):
    found = stray_headings(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: {found}"


# The chapters that answer the study note's questions, and the whole
# Transformer's: their length in lines, at most (the library issue, item 6).
LONGEST = {"positional.md": 900, "dropout.md": 900, "masks.md": 900}
LONGEST["transformer.md"] = 1200
LONGEST_BLOCK = 80  # lines of one definition block in those chapters


def collapsed_lines(text: str) -> set[int]:
    """The numbers of the lines inside `/// details` blocks (collapsed on the
    site until the reader opens them)."""
    inside, found = False, set()
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("/// details"):
            inside = True
        elif line.strip() == "///":
            inside = False
        elif inside:
            found.add(number)
    return found


def opens_a_module(fence: chapters.Fence) -> bool:
    """A definition block that starts a file: a docstring, imports, __all__."""
    lines = fence.body.splitlines()
    imports = any(line.startswith(("import ", "from ")) for line in lines)
    listed = any(line.startswith("__all__") for line in lines)
    return fence.body.startswith('"""') and imports and listed


@pytest.mark.parametrize("name", sorted(LONGEST))
def test_the_question_chapters_stay_short_and_their_blocks_too(name: str):
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert len(text.splitlines()) <= LONGEST[name], name
    for fence in chapters.read_fences(text, name):
        if fence.is_definition:
            assert len(fence.body.splitlines()) <= LONGEST_BLOCK, (name, fence.line)


def test_the_check_sees_a_collapsed_block_and_a_module_opening():
    code = '"""Doc."""\n\nimport os\n\n__all__ = ["f"]\n'
    text = f"/// details | imports\n``` {{.python file=a.py}}\n{code}```\n///\n"
    (fence,) = chapters.read_fences(text)
    assert opens_a_module(fence) and fence.line in collapsed_lines(text)
    (shown,) = chapters.read_fences(text.replace("/// details | imports\n", ""))
    assert shown.line not in collapsed_lines(text.replace("/// details", ""))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_imports_and_checks_are_not_the_first_code_a_chapter_shows(path: Path):
    """A module's docstring, imports and __all__ are collapsed, with nothing
    after __all__ in that block; the first definition shown defines more
    than argument checks."""
    text = path.read_text(encoding="utf-8")
    collapsed = collapsed_lines(text)
    shown = []
    for fence in chapters.read_fences(text, path.name):
        if not fence.is_definition:
            continue
        if opens_a_module(fence):
            assert fence.line in collapsed, (path.name, fence.line)
            last = fence.body.rstrip().splitlines()[-1]
            assert last.startswith("__all__") or last == "]", (path.name, fence.line)
        elif fence.line not in collapsed:
            shown.append(fence)
    if shown:
        names = chapters.defined_names(shown[0].body)
        assert not names or not all(n.startswith("_check") for n in names), path.name
