"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from literate_transformer.debug import set_debug


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device the session tests on: LT_DEVICE (set by nox), default cpu."""
    name = os.environ.get("LT_DEVICE", "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        pytest.fail("LT_DEVICE=cuda but torch.cuda.is_available() is False")
    return torch.device(name)


@pytest.fixture(scope="session", autouse=True)
def checks_of_contents_everywhere() -> Iterator[None]:
    """The tests turn debug mode on: the checks of contents (id, position and
    label ranges) run on every device, as they always do on the CPU.
    tests/test_syncs.py turns it off where it counts the reads."""
    previous = set_debug(True)
    yield
    set_debug(previous)
