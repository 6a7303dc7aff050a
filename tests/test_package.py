"""The package imports, and the unit tests run on the session's device."""

from __future__ import annotations

import importlib
import os
import pkgutil
from importlib.metadata import version
from pathlib import Path

import torch

import literate_transformer
from tools import api, chapters

ROOT = Path(__file__).resolve().parent.parent


def test_the_version_is_the_distributions_version():
    assert literate_transformer.__version__ == version("literate-transformer")


def test_the_device_fixture_follows_the_nox_session(device: torch.device):
    assert device.type == os.environ.get("LT_DEVICE", "cpu")
    x = torch.arange(6.0, device=device).reshape(2, 3)
    assert x.device.type == device.type
    assert (x @ x.T).tolist() == [[5.0, 14.0], [14.0, 50.0]], x @ x.T


def package_modules() -> list[str]:
    path, prefix = literate_transformer.__path__, "literate_transformer."
    found = pkgutil.walk_packages(path, prefix)
    return ["literate_transformer", *sorted(info.name for info in found)]


def test_every_module_lists_its_public_names_in_all():
    for name in package_modules():
        module = importlib.import_module(name)
        assert isinstance(getattr(module, "__all__", None), list), name
        for public in module.__all__:
            assert hasattr(module, public), f"{name}.__all__ names {public}"
            assert not public.startswith("_"), f"{name}.__all__ names {public}"


def test_no_name_of_the_package_hides_one_of_its_modules():
    import types

    for info in pkgutil.iter_modules(literate_transformer.__path__):
        importlib.import_module(f"literate_transformer.{info.name}")
        found = getattr(literate_transformer, info.name)
        assert isinstance(found, types.ModuleType), (info.name, found)


def test_the_main_names_import_from_the_package():
    from literate_transformer import MultiHeadAttention, Transformer, padding_mask

    assert Transformer is literate_transformer.model.Transformer
    assert MultiHeadAttention is literate_transformer.attention.MultiHeadAttention
    assert padding_mask is literate_transformer.masks.padding_mask


def test_the_api_reference_lists_exactly_the_modules_all():
    pages = [page for _, page in chapters.read_nav(ROOT / "mkdocs.yml")]
    pages = [page for page in pages if page.endswith(".md")]
    entries, missing = api.api_entries(ROOT / "docs", pages, anchors=False)
    assert missing == []
    listed = [(entry.module, entry.name) for entry in entries]
    assert len(listed) == len(set(listed))  # no entry twice
    expected = {
        (name, public)
        for name in package_modules()
        if api.is_documented(name)
        for public in importlib.import_module(name).__all__
    }
    assert set(listed) == expected
    # Every name the package re-exports has an entry in its own module.
    names = {name for _, name in listed}
    assert set(literate_transformer.__all__) <= names
