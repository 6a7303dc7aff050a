"""Figures compared by tolerance: another machine's rounding is no change,
a moved mark or a new one is."""

from __future__ import annotations

import re
from pathlib import Path

from tools.figures import same_drawing

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures"

DRAWN = """<svg><defs><clipPath id="p3f2a9c1e07"><rect x="43.08" y="16.598678"/>
</clipPath></defs><path d="M 43.088521 202.548979 L 43.088521 16.598678"
clip-path="url(#p3f2a9c1e07)" style="stroke-width: 0.8"/><text>55</text>
<use xlink:href="#DejaVuSans-30" x="-3.5"/></svg>"""


def test_rounding_and_the_ids_it_changes_are_no_change():
    moved = DRAWN.replace("16.598678", "16.598677").replace("p3f2a9c1e07", "p0b1")
    assert moved != DRAWN
    assert same_drawing(DRAWN, moved)


def test_a_moved_mark_a_new_mark_or_other_text_is_a_change():
    assert not same_drawing(DRAWN, DRAWN.replace("202.548979", "202.6"))
    assert not same_drawing(DRAWN, DRAWN.replace("-3.5", "3.5"))
    assert not same_drawing(DRAWN, DRAWN.replace("</svg>", '<path d="M 1 2"/></svg>'))
    assert not same_drawing(DRAWN, DRAWN.replace("<text>55<", "<text>56<"))
    assert not same_drawing(DRAWN, DRAWN.replace("DejaVuSans-30", "DejaVuSans-31"))


def test_every_committed_figure_is_the_same_as_itself_nudged():
    figures = sorted(FIGURES.glob("*.svg"))
    assert len(figures) >= 10
    for path in figures:
        text = path.read_text(encoding="utf-8")
        nudged = re.sub(r"(?<=\d\.\d{5})\d\b", "9", text)  # sixth decimals
        assert nudged != text, path.name
        assert same_drawing(text, nudged), path.name
