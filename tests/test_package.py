"""The package's shape: every module imports first in a fresh interpreter (no import
cycles), the layers import only downwards, and ``vidcolor --help`` answers without PyTorch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, subprocess_env

PACKAGE = REPO / "vidcolor"
MODULES = sorted(
    ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
)
# Each layer may import from itself and the layers after it in this list, never before.
LAYERS = ["cli", "batch", "train", "eval", "film", "colorizers", "models", "io", "ops"]
BELOW_EVERYTHING = {"vidcolor.errors", "vidcolor.console", "vidcolor"}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def imported(path: Path) -> set[str]:
    """The vidcolor modules a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vidcolor"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("vidcolor"))
    return {name for name in found if name in MODULES}


def test_every_module_imports_first_in_a_fresh_interpreter():
    """One interpreter per module: an import cycle shows only when its module comes first."""
    failures = []
    for module in MODULES:
        run = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                             env=subprocess_env(), timeout=120)
        if run.returncode != 0:
            failures.append(f"{module}: {run.stderr.strip().splitlines()[-1]}")
    assert failures == []


@pytest.mark.parametrize("module", [m for m in MODULES if layer(m)])
def test_layers_import_only_downwards(module):
    path = PACKAGE.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    mine = LAYERS.index(layer(module))
    upwards = sorted(name for name in imported(path)
                     if name not in BELOW_EVERYTHING and layer(name) and LAYERS.index(layer(name)) < mine)
    assert upwards == []


def test_help_and_usage_errors_need_no_pytorch():
    code = ("import sys, runpy; sys.argv = ['vidcolor', '--help']\n"
            "try:\n    runpy.run_module('vidcolor', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert run.returncode == 0, run.stderr
    assert "colorize" in run.stdout
