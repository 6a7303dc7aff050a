"""The real-text corpus: the snapshot reads back what was written, refuses a
missing or damaged file, splits by document, and tokenizes the same way
every time."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from literate_transformer.text import (
    CORPUS,
    EOD,
    UNK,
    Vocabulary,
    load_corpus,
    read_snapshot,
    split_of,
    tokenize,
    write_snapshot,
)

DOCUMENTS = {
    "first": 'The "x" statement\n*****\n\nx = 1\n',
    "second": "None is a word.",
}


def test_a_snapshot_reads_back_what_was_written(tmp_path: Path):
    path = tmp_path / "corpus.txt"
    write_snapshot(DOCUMENTS, path, "two made-up topics")
    assert read_snapshot(path) == {k: v.rstrip("\n") for k, v in DOCUMENTS.items()}
    assert read_snapshot(str(path)) == read_snapshot(path)  # a str path too
    assert path.read_text().startswith("# two made-up topics\n")


def test_a_missing_file_names_the_path_and_how_to_get_it(tmp_path: Path):
    missing = tmp_path / "nowhere.txt"
    with pytest.raises(FileNotFoundError, match="path: expected the corpus") as error:
        read_snapshot(missing)
    assert str(missing) in str(error.value) and "snapshot_pydoc" in str(error.value)


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace("None is", "None was"),  # a changed word
        lambda text: text + "one more line\n",  # an added line
        lambda text: text.split("\n", 5)[5],  # no header
        lambda text: text.replace("@@ topic: second", "@@ topic: first"),  # repeated
    ],
    ids=["edited", "appended", "headless", "repeated-topic"],
)
def test_a_damaged_snapshot_is_refused(tmp_path: Path, damage):
    path = tmp_path / "corpus.txt"
    write_snapshot(DOCUMENTS, path, "two made-up topics")
    path.write_text(damage(path.read_text()))
    with pytest.raises(ValueError, match=r"^path: .*(damaged|header|repeated)"):
        read_snapshot(path)


def test_a_file_that_is_not_text_is_refused(tmp_path: Path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"# header\n\xff\xfe")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_snapshot(path)
    with pytest.raises(TypeError, match=r"^path: expected a file path"):
        read_snapshot(3)


def test_the_shipped_snapshot_is_intact_and_split_by_document():
    documents = read_snapshot(CORPUS)
    splits = {name: split_of(name) for name in documents}
    assert set(splits.values()) == {"train", "valid", "test"}
    assert split_of("assert") == splits["assert"]  # a function of the name only
    corpus = load_corpus()
    for split, named in corpus.documents.items():
        assert set(named) == {n for n, s in splits.items() if s == split}
        assert all(ids[-1] == EOD and (ids[:-1] != EOD).all() for ids in named.values())
    assert corpus.tokens("train") == len(corpus.stream("train"))


def test_the_tokenizer_keeps_words_numbers_breaks_and_short_punctuation_runs():
    assert tokenize("__init__(self, x=10)\n=====") == [
        "__init__",
        "(",
        "self",
        ",",
        "x",
        "=",
        "10",
        ")",
        "\n",
        "===",
    ]
    assert tokenize("None none") == ["None", "none"]  # case is kept
    assert tokenize("") == []
    with pytest.raises(TypeError, match=r"^text: expected a str"):
        tokenize(b"bytes")


def test_the_vocabulary_is_ordered_by_frequency_and_maps_the_rest_to_unk():
    vocab = Vocabulary.from_tokens(["b", "a", "b", "c", "b", "a"], min_count=2)
    assert vocab.words[3:] == ("b", "a")  # c is too rare
    assert vocab.encode(["a", "c"]).tolist() == [4, UNK]
    assert vocab.decode(torch.tensor([3, 4])) == "b a"
    with pytest.raises(ValueError, match=r"^min_count: expected"):
        Vocabulary.from_tokens(["a"], min_count=0)
    with pytest.raises(ValueError, match=r"^words: expected"):
        Vocabulary(("a", "b"))


def test_the_vocabulary_comes_from_the_training_split_only():
    corpus = load_corpus(min_count=1)
    train = {t for ids in corpus.documents["train"].values() for t in ids.tolist()}
    assert UNK not in train  # min_count 1: every training word is known
    assert (corpus.stream("test") == UNK).any()  # test words the training split lacks
