"""What the API reference shows: the names of every module's `__all__`, each
with the chapter section that defines and explains it.

The site build (tools/mkdocs_hooks.py) writes the reference page from these
entries, and tests/test_package.py checks that they are exactly the modules'
`__all__`. A name in `__all__` that no chapter defines is reported, so that the
strict build fails on it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from tools import chapters

ROOT_MODULE = chapters.PACKAGE  # re-exports only: its entries live in the modules


@dataclass(frozen=True)
class Entry:
    module: str  # literate_transformer.attention
    name: str  # MultiHeadAttention
    chapter: str  # masks.md (docs-relative)
    anchor: str  # the id of the chapter section that defines it
    section: str  # that section's heading

    @property
    def identifier(self) -> str:
        return f"{self.module}.{self.name}"


def public_names(module: str) -> list[str]:
    """The `__all__` of a module of the package (a missing one is an error)."""
    names = getattr(importlib.import_module(module), "__all__", None)
    if names is None:
        raise LookupError(f"{module} defines no __all__")
    return list(names)


def is_documented(module: str) -> bool:
    """Modules with reference entries: not the root, not private ones."""
    parts = module.split(".")
    return module != ROOT_MODULE and not any(p.startswith("_") for p in parts[1:])


def api_entries(
    docs: Path, pages: list[str], *, anchors: bool = True
) -> tuple[list[Entry], list[str]]:
    """The reference's entries, modules in the order the chapters (`pages`,
    docs-relative, in nav order) meet them; and the names of an `__all__`
    that no chapter defines."""
    where: dict[tuple[str, str], Entry] = {}
    modules: list[str] = []
    for page in pages:
        text = (docs / page).read_text(encoding="utf-8")
        for block in chapters.definitions(text, f"docs/{page}", anchors=anchors):
            if block.module not in modules:
                modules.append(block.module)
            for name in block.names:
                entry = Entry(block.module, name, page, block.anchor, block.section)
                where.setdefault((block.module, name), entry)
    entries, missing = [], []
    for module in filter(is_documented, modules):
        for name in public_names(module):
            if (module, name) in where:
                entries.append(where[module, name])
            else:
                missing.append(f"{module}.{name}")
    return entries, missing
