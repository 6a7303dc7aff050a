"""Turn a chapter of the site into a Jupyter notebook that imports the package.

A chapter holds prose, definition blocks (Entangled's `{.python file=...}`
fences, tangled into `literate_transformer/`) and claim
blocks (plain `python` fences). Its notebook keeps the prose and the claim
blocks as they are, and shows the definition blocks as text: the code they
define is imported from the installed package, never pasted, so the notebook
runs what the chapter tangles.

Used by the site build (tools/mkdocs_hooks.py writes one notebook per chapter
into the site's `downloads/`) and by the tests. From the repository root:

    python -m tools.notebooks docs/masks.md masks.ipynb
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools.chapters import read_parts

ADMONITION = re.compile(
    r"^(?:!!!|\?\?\?\+?)\s*(?P<kind>\w+)(?:\s+\"(?P<title>[^\"]*)\")?"
)
# A link or image target that is a page or a file of the site.
LOCAL_TARGET = re.compile(r"\]\((?!https?:|mailto:|#)(?P<target>[^)\s]+)\)")


def site_link(target: str, site_url: str) -> str:
    """A chapter's relative link, as an absolute link into the published site."""
    path, _, anchor = target.partition("#")
    if path.endswith(".md"):
        page = path[: -len(".md")]
        path = "" if page == "index" else page + "/"
    link = site_url.rstrip("/") + "/" + path
    return link + ("#" + anchor if anchor else "")


def prose_for_jupyter(text: str, site_url: str) -> str:
    """Links made absolute, admonitions made quotes, a collapsed block's
    title a line of bold (Jupyter renders none of them)."""
    out: list[str] = []
    in_admonition = False
    for line in text.splitlines():
        if line.startswith("/// details |"):
            out.append(f"**{line.split('|', 1)[1].strip()}**")
            continue
        if line.strip() == "///":
            continue
        box = ADMONITION.match(line)
        if box is not None:
            title = box["title"] or box["kind"].capitalize()
            out.append(f"> **{title}**")
            out.append(">")
            in_admonition = True
            continue
        if in_admonition and (line.startswith("    ") or not line.strip()):
            out.append(("> " + line[4:]).rstrip())
            continue
        in_admonition = False
        out.append(line)
    joined = "\n".join(out)
    # Blank quote lines at the end of an admonition end the quote.
    joined = re.sub(r"(\n>)+\n(?!>)", "\n\n", joined)
    return LOCAL_TARGET.sub(
        lambda m: "](" + site_link(m["target"], site_url) + ")", joined
    )


def chapter_notebook(
    markdown: str, *, chapter: str, site_url: str
) -> nbformat.NotebookNode:
    """The notebook of one chapter (`chapter`: its path, e.g. docs/masks.md)."""
    page = site_link(Path(chapter).name, site_url)
    cells: list = []
    text: list[str] = []

    def flush() -> None:
        joined = "\n\n".join(part.strip("\n") for part in text).strip("\n")
        if joined.strip():
            cells.append(new_markdown_cell(joined))
        text.clear()

    for part in read_parts(markdown, chapter):
        fence = part.fence
        if fence is None:
            text.append(prose_for_jupyter(part.prose, site_url))
            continue
        info, body = fence.info, fence.body
        if fence.is_claim:
            flush()
            cells.append(new_code_cell(body.strip("\n")))
        elif fence.is_definition:
            where = f"`{fence.target}`" if fence.target else "the package"
            text.append(
                f"*Defined in {where}; the notebook imports it from the "
                f"installed package:*\n\n```python\n{body.strip()}\n```"
            )
        else:
            language = info.split()[0] if info else ""
            text.append(f"```{language}\n{body}\n```")
    flush()
    records = RECORDS_NOTE if "from lab" in markdown else ""
    intro = new_markdown_cell(
        f"This notebook is generated from the chapter [{chapter}]({page}) when "
        "the site is built. It needs the package (`pip install "
        "literate-transformer`, or `pip install -e .` in a checkout). The "
        "definition blocks are shown as text: what they define is imported "
        "from the package, so the notebook runs the code that the chapter "
        "tangles. The claim blocks are code cells; run them top to bottom." + records
    )
    setup = new_code_cell(
        "# The chapter's figure blocks save their figures under docs/figures/.\n"
        "from pathlib import Path\n\n"
        'Path("docs/figures").mkdir(parents=True, exist_ok=True)\n'
        "import literate_transformer\n\n"
        'print("literate_transformer", literate_transformer.__version__)'
    )
    title = []
    if cells and cells[0].cell_type == "markdown" and cells[0].source.startswith("# "):
        heading, _, rest = cells[0].source.partition("\n")
        title = [new_markdown_cell(heading)]
        if rest.strip():
            cells[0] = new_markdown_cell(rest.strip("\n"))
        else:
            cells.pop(0)
    cells[:0] = [*title, intro, setup]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"  # stable ids: the same chapter, the same file
    return notebook


RECORDS_NOTE = (
    " The cells that show experiment results use the lab, `lab/` in the "
    "repository (the site's experiments and claims; the package does not ship "
    "it), and the experiments' records, the JSON files of `docs/records/` (the "
    "site serves them under `records/`): run the notebook from the root of a "
    "clone, or put a clone on `PYTHONPATH` and set the environment variable "
    "`LT_RECORDS` to its `docs/records`."
)


def write_chapter_notebook(chapter: Path, target: Path, *, site_url: str) -> None:
    notebook = chapter_notebook(
        chapter.read_text(encoding="utf-8"),
        chapter=f"docs/{chapter.name}",
        site_url=site_url,
    )
    nbformat.validate(notebook)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")


def site_url(root: Path = Path(__file__).parent.parent) -> str:
    """The `site_url` of mkdocs.yml."""
    config = (root / "mkdocs.yml").read_text(encoding="utf-8")
    found = re.search(r"^site_url:\s*(\S+)", config, re.MULTILINE)
    if found is None:
        raise RuntimeError("mkdocs.yml sets no site_url")
    return found[1]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tools.notebooks CHAPTER.md OUT.ipynb")
    write_chapter_notebook(Path(sys.argv[1]), Path(sys.argv[2]), site_url=site_url())
