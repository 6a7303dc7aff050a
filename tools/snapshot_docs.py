"""Write the large real-text corpus, literate_transformer/data/python_docs.txt.xz,
and its tokenizer, python_docs_bpe.json beside it.

    apt-get download python3.11-doc
    dpkg-deb -x python3.11-doc_*.deb doc
    python -m tools.snapshot_docs doc/usr/share/doc/python3.11/html/_sources

The corpus is the reStructuredText source of Python's documentation, which
Debian's python3.11-doc package ships beside the HTML (497 `.rst.txt` files).
docutils reads the markup; Sphinx's own directives and roles, which docutils
does not know, are registered here in the simplest form that keeps their text
(an object description keeps its signature, a cross-reference its title, a
version note its sentence). One page is one document, a paragraph one block of
text between blank lines.

The split is by page (`split_of` of the package, the rule of the pydoc corpus).
Then every training paragraph that repeats a validation or test paragraph is
dropped from the training pages: the paragraphs of this corpus's validation and
test pages and those of the pydoc corpus's (its topics are excerpts of these
pages, rendered differently). Two paragraphs repeat each other when their words
(lower case, letters and digits) are the same, or when they share a run of
`SHINGLE` words. tests/test_corpus.py checks the snapshot the same two ways
without this module. The tokenizer is a byte-level BPE (BytePairs) learned
from the training pages, in name order.

docutils is the `snapshot` dependency group: `pip install --group snapshot`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.core import publish_doctree
from docutils.parsers.rst import Directive, directives, roles
from docutils.statemachine import StringList

from literate_transformer.text import (
    BPE_SIZE,
    DOCS,
    LICENCE,
    TOKENIZER,
    BytePairs,
    read_snapshot,
    split_of,
    write_snapshot,
)

PACKAGE = "python3.11-doc"  # the Debian package the sources come from
SKIPPED = ("whatsnew/", "includes/")  # release notes; fragments other pages include
SHINGLE = 13  # words in a run that two paragraphs must not share across the split
WORD = re.compile(r"[a-z0-9]+")

# What Sphinx's directives become. An object description (`.. function::
# name(args)`) keeps its signature as a line of code, then its body.
DESCRIPTIONS = {
    "function", "method", "class", "attribute", "data", "exception",
    "decorator", "decoratormethod", "classmethod", "staticmethod",
    "abstractmethod", "coroutinefunction", "coroutinemethod",
    "awaitablefunction", "object", "opcode", "cmdoption", "option", "envvar",
    "describe", "pdbcommand", "c:function", "c:member", "c:type", "c:var",
    "c:macro", "c:struct",
}  # fmt: skip
# The sentence Sphinx writes before a version note's text.
VERSIONS = {
    "versionadded": "New in version {}.",
    "versionchanged": "Changed in version {}:",
    "deprecated": "Deprecated since version {}:",
    "deprecated-removed": "Deprecated since version {}, will be removed in version {}:",
}
CODE = {
    "code-block",
    "sourcecode",
    "doctest",
    "testcode",
    "testoutput",
    "productionlist",
}
TITLED = {"seealso": "See also:", "impl-detail": "CPython implementation detail:"}
TITLED |= {"availability": "Availability:"}
BODY = {"only", "hlist", "glossary", "centered", "tabularcolumns"}  # their body only
# Everything else Sphinx adds (toctree, index, module, audit-event, include, ...)
# leaves no text.
SUBSTITUTIONS = {"version": "3.11", "release": "3.11.2"}  # Sphinx defines them


class AnyOption(dict[str, Any]):
    """A directive's options: every name is accepted, its value kept as text."""

    def __missing__(self, name: str) -> Any:
        return directives.unchanged

    def __bool__(self) -> bool:  # docutils reads options only if there is a spec
        return True


def lead(text: str, body: list[nodes.Node]) -> list[nodes.Node]:
    """`text` put in front of the body's first paragraph, as Sphinx writes a
    version note or an implementation detail; its own paragraph otherwise."""
    if body and isinstance(body[0], nodes.paragraph):
        body[0].insert(0, nodes.Text(text + " "))
        return body
    return [nodes.paragraph(text=text), *body]


class Described(Directive):
    """`.. function:: f(x)` and its kin: the signature, then the body."""

    has_content = True
    final_argument_whitespace = True
    optional_arguments = 1
    option_spec = AnyOption()

    def run(self) -> list[nodes.Node]:
        signatures = re.sub(r"\\\n\s*", "", "\n".join(self.arguments))  # a \ joins
        lines = [line for line in signatures.splitlines() if line.strip()]
        made: list[nodes.Node] = [
            nodes.literal_block(text=" ".join(line.split())) for line in lines
        ]
        return made + self.body()

    def body(self, first: str = "") -> list[nodes.Node]:
        """The directive's content as nodes, after the paragraph `first`. (A
        new list of lines: inserting into `self.content` would insert into the
        page that the parser is reading.)"""
        lines = ([first, ""] if first else []) + list(self.content)
        holder = nodes.container()
        self.state.nested_parse(StringList(lines), self.content_offset, holder)
        return list(holder.children)


class Version(Described):
    """`.. versionadded:: 3.2` and its kin: Sphinx's sentence, then the body."""

    optional_arguments = 3  # one or two versions, then text

    def run(self) -> list[nodes.Node]:
        sentence = VERSIONS[self.name]
        count = sentence.count("{}")
        words = " ".join(self.arguments).split()
        versions, rest = (words + [""] * count)[:count], words[count:]
        body = self.body(" ".join(rest))  # text on the directive's line first
        return lead(sentence.format(*versions), body)


class Code(Described):
    """A code block of any of Sphinx's kinds: its text, verbatim."""

    def run(self) -> list[nodes.Node]:
        text = "\n".join(self.content)
        return [nodes.literal_block(text=text)] if text.strip() else []


class Titled(Described):
    """A note Sphinx opens with a fixed phrase: "See also:" on its own line,
    the others in front of their text (which may follow on the same line)."""

    def run(self) -> list[nodes.Node]:
        title = TITLED[self.name]
        body = self.body(" ".join(self.arguments))
        if self.name == "seealso":
            return [nodes.paragraph(text=title), *body]
        return lead(title, body)


class Body(Described):
    """A directive whose body is ordinary text (`only`, `glossary`, ...)."""

    def run(self) -> list[nodes.Node]:
        return self.body()


class Nothing(Described):
    """A directive that leaves no text on the page."""

    def run(self) -> list[nodes.Node]:
        return []


def reference_role(
    name: str, rawtext: str, text: str, lineno: int, inliner: Any,
    options: dict[str, Any] | None = None, content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.Node]]:  # fmt: skip
    """`:func:`~os.path.join``, `:ref:`title <label>`` and the like: the text a
    reader sees (the title, or the target with `~` keeping its last part)."""
    text = nodes.unescape(text)
    titled = re.fullmatch(r"(.*?)\s*<([^<>]+)>", text, re.DOTALL)
    if titled and titled.group(1):
        shown = titled.group(1)
    else:
        target = titled.group(2) if titled else text
        shown = target.lstrip("!")
        if shown.startswith("~"):
            shown = shown[1:].rsplit(".", 1)[-1]
    if name in ("func", "meth", "c:func", "py:meth") and not shown.endswith(")"):
        shown += "()"
    if name in ("pep", "rfc") and not (titled and titled.group(1)):
        shown = f"{name.upper()} {shown.split('#')[0]}"
    return [nodes.literal(rawtext, shown)], []


def register(sources: Iterable[str]) -> None:
    """Teach docutils every directive and role that the `sources` use and that
    it does not know, the way this module describes."""
    for name in DESCRIPTIONS:
        directives.register_directive(name, Described)
    for name in VERSIONS:
        directives.register_directive(name, Version)
    for name in CODE:
        directives.register_directive(name, Code)
    for name in TITLED:
        directives.register_directive(name, Titled)
    for name in BODY:
        directives.register_directive(name, Body)
    text = "\n".join(sources)
    known = DESCRIPTIONS | set(VERSIONS) | CODE | set(TITLED) | BODY
    for name in set(re.findall(r"^\s*\.\. ([\w:-]+)::", text, re.MULTILINE)):
        if name not in known and name not in directives._directive_registry:
            directives.register_directive(name, Nothing)
    directives.register_directive("include", Nothing)  # includes/ is skipped
    for name in set(re.findall(r":([a-z]+(?::[a-z]+)?):`", text)):
        if name not in ("sub", "sup", "emphasis", "strong"):
            roles.register_local_role(name, reference_role)


def blocks(node: nodes.Node) -> Iterator[str]:
    """The text of a doctree, one string per paragraph, title, code block,
    list item's paragraph or table row; prose on one line."""
    if isinstance(node, (nodes.comment, nodes.system_message, nodes.target)):
        return
    if isinstance(node, (nodes.substitution_definition, nodes.raw)):
        return
    if isinstance(node, (nodes.literal_block, nodes.doctest_block)):
        text = node.astext().rstrip()
        if text.strip():
            yield text
    elif isinstance(node, (nodes.paragraph, nodes.title, nodes.term, nodes.rubric)):
        text = " ".join(node.astext().split())
        if text:
            yield text
    elif isinstance(node, nodes.line_block):
        yield node.astext()
    elif isinstance(node, nodes.row):
        cells = (" ".join(entry.astext().split()) for entry in node.children)
        yield " | ".join(cells)
    elif isinstance(node, nodes.list_item) and isinstance(
        node.parent, nodes.bullet_list
    ):
        for index, text in enumerate(
            b for child in node.children for b in blocks(child)
        ):
            yield f"* {text}" if index == 0 else text
    else:
        for child in node.children:
            yield from blocks(child)


def page_text(source: str, name: str) -> str:
    """The text of one page's reStructuredText `source`."""
    prolog = "".join(
        f".. |{key}| replace:: {value}\n" for key, value in SUBSTITUTIONS.items()
    )
    tree = publish_doctree(
        prolog + "\n" + source,
        source_path=name,
        settings_overrides={
            "report_level": 5,
            "halt_level": 5,
            "warning_stream": False,
            "file_insertion_enabled": False,
            "raw_enabled": False,
            "input_encoding": "unicode",
        },
    )
    return "\n\n".join(blocks(tree))


def words(paragraph: str) -> tuple[str, ...]:
    """A paragraph's words, for comparing paragraphs: lower case, letters and
    digits only."""
    return tuple(WORD.findall(paragraph.lower()))


def shingles(paragraph: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Every run of SHINGLE words in a paragraph's words."""
    n = SHINGLE
    return {paragraph[i : i + n] for i in range(len(paragraph) - n + 1)}


def deduplicate(
    pages: dict[str, str], held_out: Iterable[str]
) -> tuple[dict[str, str], int, int]:
    """`pages` with every training paragraph that repeats a `held_out` paragraph
    removed (and a page left empty dropped); also the paragraphs kept and
    dropped."""
    held = [words(p) for p in held_out]
    whole = {p for p in held if p}
    runs = set().union(*(shingles(p) for p in held))
    kept_pages: dict[str, str] = {}
    kept = dropped = 0
    for name, text in pages.items():
        if split_of(name) != "train":
            kept_pages[name] = text
            continue
        paragraphs = []
        for paragraph in text.split("\n\n"):
            found = words(paragraph)
            if found in whole or not runs.isdisjoint(shingles(found)):
                dropped += 1
            else:
                paragraphs.append(paragraph)
        kept += len(paragraphs)
        if paragraphs:
            kept_pages[name] = "\n\n".join(paragraphs)
    return kept_pages, kept, dropped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", type=Path, help="the package's html/_sources")
    parser.add_argument("--version", required=True, help="the package's version")
    args = parser.parse_args()
    files = sorted(args.sources.rglob("*.rst.txt"))
    if not files:
        parser.error(f"sources: no .rst.txt file under {args.sources}")
    texts = {
        f.relative_to(args.sources).as_posix().removesuffix(".rst.txt"): f.read_text(
            encoding="utf-8"
        )
        for f in files
    }
    texts = {n: t for n, t in texts.items() if not n.startswith(SKIPPED)}
    register(texts.values())
    pages = {name: page_text(source, name) for name, source in texts.items()}
    pages = {name: text for name, text in pages.items() if text.strip()}
    held_out = [
        paragraph
        for name, text in pages.items()
        if split_of(name) != "train"
        for paragraph in text.split("\n\n")
    ]
    held_out += [
        paragraph
        for name, text in read_snapshot().items()  # the pydoc corpus
        if split_of(name) != "train"
        for paragraph in text.split("\n\n")
    ]
    pages, kept, dropped = deduplicate(pages, held_out)
    line = (
        f"the reStructuredText sources of Python's documentation, html/_sources "
        f"of Debian's {PACKAGE} {args.version}, read with docutils by "
        "`python -m tools.snapshot_docs` (whatsnew/ and includes/ left out); "
        f"{dropped} training paragraphs that repeat a validation or test "
        "paragraph of this corpus or of the pydoc corpus removed"
    )
    write_snapshot(pages, DOCS, line)
    documents = read_snapshot(DOCS)  # what the package will read
    print(
        f"{DOCS}: {len(documents)} pages, {DOCS.stat().st_size:,} bytes; "
        f"training paragraphs kept {kept}, dropped {dropped}; licence: {LICENCE}"
    )
    train = [
        text for name, text in sorted(documents.items()) if split_of(name) == "train"
    ]
    BytePairs.train(train, BPE_SIZE).save(TOKENIZER)
    print(f"{TOKENIZER}: {len(BytePairs.load(TOKENIZER))} ids")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
