"""Every module imports on its own (catches import cycles)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import media_server
import signaling


def _modules() -> list[str]:
    names = []
    for package in (media_server, signaling):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            names.append(info.name)
    return names


def _alone() -> list[str]:
    """Every module but the Qwen backend's parts: each imports torch (seconds), and `qwen.backend` imports them all."""
    return [
        name
        for name in _modules()
        if not name.startswith("media_server.engine.backends.qwen.") or name.endswith(".backend")
    ]


@pytest.mark.parametrize("module", _alone())
def test_module_imports_alone(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_module_has_a_docstring() -> None:
    for name in _modules():
        assert importlib.import_module(name).__doc__, f"{name} has no module docstring"
