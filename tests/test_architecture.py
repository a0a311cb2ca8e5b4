"""Import rules: the core never imports Qt, and torch loads only when a model is needed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["sandbox.pipeline", "sandbox.cli", "sandbox.backtest",
                                    "sandbox.data", "sandbox.export"])
def test_core_does_not_import_qt(module):
    loaded = _modules_after(f"import {module}")
    assert "PySide6" not in loaded
    assert "pyqtgraph" not in loaded


@pytest.mark.parametrize("module", ["sandbox.pipeline", "sandbox.cli", "sandbox.data"])
def test_core_imports_do_not_load_torch(module):
    assert "torch" not in _modules_after(f"import {module}")


def test_cli_help_does_not_load_torch_or_qt():
    loaded = _modules_after("from sandbox.cli import build_parser; build_parser()")
    assert not {"torch", "PySide6", "pandas"} & loaded
