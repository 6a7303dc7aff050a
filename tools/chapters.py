"""The one reader of the chapters: their fences, their navigation order, their
section anchors.

The tangle wrapper (tools/tangle.py), the site's build hooks
(tools/mkdocs_hooks.py), the notebook builder (tools/notebooks.py) and the
test set-up (conftest.py) all read the chapters through this module, so they
agree on where a block starts and ends, which blocks are definitions and which
page comes first. tests/test_codeblocks.py keeps a reader of its own, as an
independent check that every Python fence is run.

A chapter holds three kinds of fences:

- definition blocks, Entangled's ```` ``` {.python file=literate_transformer/x.py} ````:
  tangled into the package, several blocks of one file joined in order;
- claim blocks, ```` ```python ````: run by the tests, shown as code cells in
  the notebooks;
- anything else (```` ```text ````, ```` ```bash ````...), shown as it is.

Fences follow CommonMark: ``` or ~~~, closed by a fence of the same character,
at least as long, with no info string; as in PyMdown's superfences, a fence may
be indented (inside an admonition, for example). A fence
still open at the end of a chapter is an error (Entangled would drop its code
without a word).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "literate_transformer"  # the library: what `pip install` gives
LAB = "lab"  # the chapters' experiments, records and runner: not shipped
PACKAGES = (PACKAGE, LAB)  # every folder that the chapters tangle into
DOCS = "docs"
CLAIM_INFOS = frozenset({"python"})  # exactly what pytest-codeblocks runs
# A number a page's prose quotes from a record, {{NAME:FACT}}: NAME an
# experiment (its name may hold a rate, lm-dropout-settings-0.3) or `bench`.
FACT = re.compile(r"\{\{\s*(?P<name>[a-z0-9.-]+):(?P<key>[a-z0-9.-]+)\s*\}\}")
# Anything that looks like one, also one FACT cannot read ({{bench:Key}}).
LOOSE_FACT = re.compile(r"\{\{\s*[a-z0-9.-]+:[\w.-]+\s*\}\}")

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
DEFINITION_INFO = re.compile(r"^\{\s*\.python\b(?P<props>[^{}]*)\}$")
FILE_PROP = re.compile(r"\bfile=(?P<file>\"[^\"]*\"|'[^']*'|[^\s}]+)")
ID_PROP = re.compile(r"(?:^|\s)#(?P<id>[^\s{}]+)")
HEADING = re.compile(r"^(?P<level>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
DEFINES = re.compile(r"^(?:class|def)\s+(?P<name>[A-Za-z_]\w*)")
# A top-level assignment: NAME = ..., NAME: type = ..., A, B = ...
ASSIGNS = re.compile(
    r"^(?P<names>[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(?::[^=]*)?=(?!=)"
)


class ChapterError(Exception):
    """A chapter that the tools cannot read safely."""


@dataclass(frozen=True)
class Fence:
    """One fenced block of a chapter."""

    line: int  # 1-based line of the opening fence
    end: int  # 1-based line of the closing fence
    info: str  # the info string, stripped
    body: str  # the content, without the fences, dedented by the fence's indent

    @property
    def is_claim(self) -> bool:
        """A plain Python block: run by the tests, a code cell in a notebook."""
        return self.info in CLAIM_INFOS

    @property
    def is_definition(self) -> bool:
        """An Entangled block (`{.python file=...}` or `{.python #name}`)."""
        found = DEFINITION_INFO.match(self.info)
        return found is not None and bool(found["props"].strip())

    @property
    def target(self) -> str | None:
        """The file the block tangles into, as written in the fence: Entangled
        tangles a `file=` block of any language."""
        found = FILE_PROP.search(self.info) if self.info.startswith("{") else None
        return found["file"].strip("\"'") if found else None

    @property
    def name(self) -> str | None:
        """The `#name` of a named Entangled block."""
        found = ID_PROP.search(self.info) if self.is_definition else None
        return found["id"] if found else None

    @property
    def code_lines(self) -> range:
        """The chapter lines (1-based) that hold the block's content."""
        return range(self.line + 1, self.end)


def read_fences(text: str, where: str = "<chapter>") -> list[Fence]:
    """Every fenced block of a chapter, in order."""
    found: list[Fence] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None or (
            opening["fence"][0] == "`" and "`" in opening["info"]
        ):  # not a fence: CommonMark forbids backticks in a backtick fence's info
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        start, body = i, []
        i += 1
        while i < len(lines):
            closing = FENCE.match(lines[i])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            line = lines[i]
            body.append(line[len(indent) :] if line.startswith(indent) else line)
            i += 1
        if i == len(lines):
            raise ChapterError(
                f"{where}:{start + 1}: the code fence {fence} opened here is "
                "never closed"
            )
        found.append(Fence(start + 1, i + 1, opening["info"].strip(), "\n".join(body)))
        i += 1
    return found


@dataclass
class Part:
    """A stretch of prose, or one fence: a chapter read as a sequence."""

    prose: str = ""
    fence: Fence | None = None


def read_parts(text: str, where: str = "<chapter>") -> list[Part]:
    """The chapter as prose and fences, in order (what a notebook is made of)."""
    lines = text.splitlines()
    parts: list[Part] = []
    last = 0  # lines before index `last` are used
    for fence in read_fences(text, where):
        prose = lines[last : fence.line - 1]
        if prose:
            parts.append(Part(prose="\n".join(prose)))
        parts.append(Part(fence=fence))
        last = fence.end
    if lines[last:]:
        parts.append(Part(prose="\n".join(lines[last:])))
    return parts


def has_claim_blocks(text: str) -> bool:
    return any(fence.is_claim for fence in read_fences(text))


def definition_files(text: str, where: str = "<chapter>") -> dict[str, list[Fence]]:
    """{target: its definition blocks in order}: what the chapter tangles."""
    files: dict[str, list[Fence]] = {}
    for fence in read_fences(text, where):
        if fence.is_definition and fence.target is not None:
            files.setdefault(fence.target, []).append(fence)
    return files


# Navigation: mkdocs.yml's nav, read once and walked here only.


def nav_entries(nav: object, title: str = "") -> list[tuple[str, str]]:
    """(title, page) of each page of a nav (as mkdocs.yml holds it), in order."""
    if isinstance(nav, str):
        return [(title or nav, nav)]
    if isinstance(nav, dict):
        return [
            entry for key, value in nav.items() for entry in nav_entries(value, key)
        ]
    if isinstance(nav, list):
        return [entry for item in nav for entry in nav_entries(item)]
    return []


def read_nav(mkdocs_yml: Path) -> list[tuple[str, str]]:
    """The nav of mkdocs.yml, without MkDocs installed (only PyYAML)."""
    import yaml

    class Loader(yaml.SafeLoader):
        """Reads mkdocs.yml without resolving its !ENV and !!python tags."""

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    if not mkdocs_yml.is_file():
        return []
    config = yaml.load(mkdocs_yml.read_text(encoding="utf-8"), Loader=Loader) or {}
    return nav_entries(config.get("nav", []))


def chapter_order(root: Path) -> list[str]:
    """The Markdown files under docs/ (root-relative), in the site's nav order,
    then any others sorted by path."""
    found = sorted(p.relative_to(root).as_posix() for p in (root / DOCS).rglob("*.md"))
    nav = [f"{DOCS}/{page}" for _, page in read_nav(root / "mkdocs.yml")]
    ordered = [page for page in nav if page in found]
    return ordered + [page for page in found if page not in ordered]


# Sections: the heading each definition block sits under, and its anchor.


def heading_anchor(text: str, seen: dict[str, int]) -> str:
    """The id that Python-Markdown's toc extension gives a heading (repeats get
    _1, _2...)."""
    from markdown.extensions.toc import slugify

    plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("`", "")
    slug = slugify(plain, "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}_{count}"


@dataclass(frozen=True)
class Definition:
    """A definition block, where it sits, and what it defines."""

    fence: Fence
    module: str  # literate_transformer.attention
    names: list[str] = field(default_factory=list)  # top-level class/def names
    anchor: str = ""  # the id of the section that holds the block
    section: str = ""  # that section's heading


def defined_names(code: str) -> list[str]:
    """The names a block defines at the top level: classes, functions and
    assigned names, in order."""
    names = []
    for line in code.splitlines():
        if match := DEFINES.match(line):
            names.append(match["name"])
        elif match := ASSIGNS.match(line):
            names += [name.strip() for name in match["names"].split(",")]
    return names


def definitions(
    text: str, where: str = "<chapter>", *, anchors: bool = True
) -> list[Definition]:
    """The definition blocks of a chapter that tangle into the library, with
    their sections (anchors=False: headings only, without Python-Markdown), in
    order."""
    lines = text.splitlines()
    inside = set()
    blocks = {}
    for fence in read_fences(text, where):
        inside.update(range(fence.line, fence.end + 1))
        if fence.target and fence.target.startswith(f"{PACKAGE}/"):
            blocks[fence.line] = fence
    found, seen, anchor, section = [], {}, "", ""
    for number, line in enumerate(lines, start=1):
        heading = HEADING.match(line) if number not in inside else None
        if heading is not None:
            anchor = heading_anchor(heading["text"], seen) if anchors else ""
            section = heading["text"]
        fence = blocks.get(number)
        if fence is not None:
            module = fence.target.removesuffix(".py").replace("/", ".")
            module = module.removesuffix(".__init__")
            names = defined_names(fence.body)
            found.append(Definition(fence, module, names, anchor, section))
    return found
