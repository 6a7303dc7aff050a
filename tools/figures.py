"""Compare two drawings of a figure by tolerance, not byte for byte.

The tests draw every figure again into docs/figures/ (docs/figures.md). On
another machine the same records give the same figure up to rounding: a
coordinate moves by a millionth of a point, and the ids that matplotlib
derives from a clip rectangle's coordinates change with it. `same_drawing`
reads both files as text with every id renamed in order of first use and
every number taken out: the text that is left must be equal, and each
number within `tolerance` of its counterpart. conftest.py puts a figure
back as committed when the new drawing is the same by this test, so a test
run on another machine leaves the committed figures alone, and a figure
that really changed (a record drawn again, a block edited) is written.
"""

from __future__ import annotations

import re

__all__ = ["same_drawing"]

# A number that stands alone: not part of a word such as an id or a font name.
NUMBER = re.compile(r"(?<![\w.#-])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")
ID = re.compile(r'\bid="([^"]+)"')


def canonical_ids(text: str) -> str:
    """`text` with each id="..." value, and every reference to it, renamed
    to id0, id1, ... in order of first definition."""
    names: dict[str, str] = {}
    for found in ID.finditer(text):
        names.setdefault(found[1], f"id{len(names)}")
    if not names:
        return text
    pattern = re.compile(
        r"(?<=[\"#])("
        + "|".join(map(re.escape, sorted(names, key=len, reverse=True)))
        + r')(?=[")])'
    )
    return pattern.sub(lambda m: names[m[1]], text)


def same_drawing(old: str, new: str, tolerance: float = 0.01) -> bool:
    """Whether `new` draws what `old` does: the same text once ids are renamed
    and numbers taken out, and every number within `tolerance` (absolute, in
    the file's units; SVG points here) of the one in its place."""
    old, new = canonical_ids(old), canonical_ids(new)
    if NUMBER.sub("#", old) != NUMBER.sub("#", new):
        return False
    return all(
        abs(float(a) - float(b)) <= tolerance
        for a, b in zip(NUMBER.findall(old), NUMBER.findall(new), strict=True)
    )
