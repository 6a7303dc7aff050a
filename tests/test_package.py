"""The package imports, and the unit tests run on the session's device."""

from __future__ import annotations

import os
from importlib.metadata import version

import torch

import literate_transformer


def test_the_version_is_the_distributions_version():
    assert literate_transformer.__version__ == version("literate-transformer")


def test_the_device_fixture_follows_the_nox_session(device: torch.device):
    assert device.type == os.environ.get("LT_DEVICE", "cpu")
    x = torch.arange(6.0, device=device).reshape(2, 3)
    assert x.device.type == device.type
    assert (x @ x.T).tolist() == [[5.0, 14.0], [14.0, 50.0]], x @ x.T
