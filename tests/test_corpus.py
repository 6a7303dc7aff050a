"""The large corpus (Python's documentation, docs/corpus.md): the snapshot says
where it comes from and refuses a damaged, truncated or missing file; no
validation or test paragraph of either corpus is in its training split; the
tool that writes it reads Sphinx's markup as the documentation shows it; the
byte-level BPE gives any text back from its ids; bits per byte."""

from __future__ import annotations

import lzma
import math
import re
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from literate_transformer.text import (
    CORPUS,
    DOCS,
    EOD,
    LICENCE,
    BytePairs,
    bits_per_byte,
    load_docs,
    read_snapshot,
    split_of,
    write_snapshot,
)

PAGES = read_snapshot(DOCS)
RUN = 13  # words in a run two paragraphs may not share across the split


def test_the_snapshot_names_its_source_licence_and_checksum():
    header = lzma.decompress(DOCS.read_bytes()).decode().split("\n@@ topic: ")[0]
    assert "python3.11-doc 3.11.2-6+deb12u9" in header
    assert "docutils" in header and "tools.snapshot_docs" in header
    assert f"# Licence: {LICENCE}" in header
    assert re.search(r"# sha256 of the text after the header: [0-9a-f]{64}", header)
    assert 450 < len(PAGES) < 500
    assert DOCS.stat().st_size < 2_000_000  # compressed; the text is 7 MB


def test_a_million_words_split_by_page():
    words = {"train": 0, "valid": 0, "test": 0}
    for name, text in PAGES.items():
        words[split_of(name)] += len(text.split())
    assert sum(words.values()) > 1_000_000
    assert min(words["valid"], words["test"]) > 70_000
    assert "library/functools" in PAGES and "whatsnew/3.11" not in PAGES


def _words(paragraph: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", paragraph.lower()))


def _held_out() -> list[tuple[str, ...]]:
    """Every validation and test paragraph of both corpora, as words."""
    paragraphs = []
    for pages in (PAGES, read_snapshot(CORPUS)):
        for name, text in pages.items():
            if split_of(name) != "train":
                paragraphs += [_words(p) for p in text.split("\n\n")]
    return [p for p in paragraphs if p]


def test_no_held_out_paragraph_is_in_the_training_split():
    held = _held_out()
    whole = set(held)
    runs = {p[i : i + RUN] for p in held for i in range(len(p) - RUN + 1)}
    assert len(whole) > 8_000 and len(runs) > 100_000  # both corpora are in
    for name, text in PAGES.items():
        if split_of(name) != "train":
            continue
        for paragraph in text.split("\n\n"):
            words = _words(paragraph)
            assert words not in whole, (name, paragraph)
            shared = {words[i : i + RUN] for i in range(len(words) - RUN + 1)}
            assert runs.isdisjoint(shared), (name, paragraph)


def test_a_truncated_or_altered_compressed_snapshot_is_refused(tmp_path: Path):
    path = tmp_path / "pages.txt.xz"
    write_snapshot({"one": "A page.", "two": "Another page."}, path, "two pages")
    assert read_snapshot(path) == {"one": "A page.", "two": "Another page."}
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"^path: .*damaged or truncated"):
        read_snapshot(path)
    text = lzma.decompress(data).decode().replace("Another", "One more")
    path.write_bytes(lzma.compress(text.encode()))
    with pytest.raises(ValueError, match=r"^path: .* is damaged: its text"):
        read_snapshot(path)
    with pytest.raises(FileNotFoundError, match="snapshot_docs"):
        read_snapshot(tmp_path / "missing.txt.xz")


def test_the_tool_reads_sphinx_markup_as_the_documentation_shows_it():
    docs = pytest.importorskip(
        "tools.snapshot_docs", reason="docutils (snapshot group)"
    )
    source = """\
:mod:`spam` --- Eggs
====================

.. function:: fry(eggs, *, \
              oil=None)
   :noindex:

   Fry *eggs* with :func:`~kitchen.heat` and :class:`Pan`, see
   :ref:`the recipe <recipe>` and :pep:`8`.

   .. versionchanged:: 3.4 The *oil* argument.

   .. versionadded:: 3.2

.. availability:: Unix.

* one item
* two

Code::

   x = 1
"""
    docs.register([source])
    text = docs.page_text(source, "spam")
    assert text.split("\n\n") == [
        "spam --- Eggs",
        "fry(eggs, *, oil=None)",
        "Fry eggs with heat() and Pan, see the recipe and PEP 8.",
        "Changed in version 3.4: The oil argument.",
        "New in version 3.2.",
        "Availability: Unix.",
        "* one item",
        "* two",
        "Code:",
        "x = 1",
    ]


BPE = BytePairs.load()


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_comes_back_from_its_byte_pairs(text: str):
    ids = BPE.encode_text(text)
    assert BPE.decode(ids) == text
    assert ids.dtype == torch.long and (ids.numel() == 0 or int(ids.min()) >= 3)


def test_special_ids_read_as_their_names():
    ids = torch.cat(
        [BPE.encode_text("one"), torch.tensor([EOD]), BPE.encode_text("two")]
    )
    assert BPE.decode(ids) == "one<eod>two"
    assert BPE.decode(BPE.encode_text("<eod>")) == "<eod>"  # text, not the id
    assert EOD not in BPE.encode_text("<eod>").tolist()


def test_a_missing_or_bad_tokenizer_is_refused(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="path: expected the tokenizer"):
        BytePairs.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": "none"}')
    with pytest.raises(ValueError, match="is not a saved tokenizer"):
        BytePairs.load(bad)
    with pytest.raises(TypeError, match="path: expected a file path"):
        BytePairs.load(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text: expected a str"):
        BPE.encode_text(b"bytes")  # type: ignore[arg-type]


def test_the_large_corpus_loads_and_converts_a_loss_to_bits_per_byte():
    docs = load_docs()
    assert len(docs.vocab) == 4096 and isinstance(docs.vocab, BytePairs)
    for split in ("train", "valid", "test"):
        assert all(int(ids[-1]) == EOD for ids in docs.documents[split].values())
        size = sum(len(PAGES[n].encode()) + 1 for n in docs.documents[split])
        assert docs.sizes[split] == size
    loss = 2.0
    expected = loss / math.log(2) * docs.tokens("valid") / docs.sizes["valid"]
    assert bits_per_byte(docs, "valid", loss) == pytest.approx(expected)
    with pytest.raises(ValueError, match="loss: expected a finite number"):
        bits_per_byte(docs, "valid", float("nan"))
    with pytest.raises(ValueError, match="split"):
        bits_per_byte(docs, "dev", 1.0)  # type: ignore[arg-type]
