"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device the session tests on: LT_DEVICE (set by nox), default cpu."""
    name = os.environ.get("LT_DEVICE", "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        pytest.fail("LT_DEVICE=cuda but torch.cuda.is_available() is False")
    return torch.device(name)
