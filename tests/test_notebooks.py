"""tools/notebooks.py: a chapter becomes a notebook that imports the package."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tools import chapters, notebooks

ROOT = Path(__file__).parent.parent

CHAPTER = """# A chapter

Prose with a [link](masks.md#the-query-mask) and ![a figure](figures/x.svg).

``` {.python file=literate_transformer/thing.py}
def thing():
    return 1
```

!!! note "Paper vs this code: a note"
    Indented text of the note.

```python
from literate_transformer.thing import thing

assert thing() == 1
```

```console
$ python -m literate_transformer
```
"""


def test_definition_blocks_are_text_and_claim_blocks_are_code():
    nb = notebooks.chapter_notebook(
        CHAPTER, chapter="docs/thing.md", site_url="https://example.org/site/"
    )
    nbformat.validate(nb)
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert len(code) == 2  # the setup cell, then the one claim block
    assert code[1].startswith("from literate_transformer.thing import thing")
    assert "def thing" not in "\n".join(code)  # imported, not pasted
    assert "*Defined in `literate_transformer/thing.py`" in text
    assert "(https://example.org/site/masks/#the-query-mask)" in text
    assert "(https://example.org/site/figures/x.svg)" in text
    assert "> **Paper vs this code: a note**" in text
    assert "> Indented text of the note." in text
    assert "```console\n$ python -m literate_transformer\n```" in text
    assert nb.cells[0].source == "# A chapter"  # the title stays first
    assert [cell.id for cell in nb.cells] == [f"cell-{i}" for i in range(len(nb.cells))]


@pytest.mark.parametrize(
    "chapter", sorted(p.name for p in (ROOT / "docs").glob("*.md"))
)
def test_every_claim_block_of_a_chapter_becomes_one_code_cell(chapter):
    markdown = (ROOT / "docs" / chapter).read_text(encoding="utf-8")
    nb = notebooks.chapter_notebook(markdown, chapter=chapter, site_url="https://x/")
    plain = [fence.body for fence in chapters.read_fences(markdown) if fence.is_claim]
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"][1:]
    assert code == [body.strip("\n") for body in plain]
