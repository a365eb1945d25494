"""The CLI package's shape (issue #14): importing it loads no dev server, modules stay
small and simple, and the console-script entry point is where setup.cfg says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parent.parent / "rudder_analytics" / "cli"


def test_importing_the_cli_loads_no_dev_server() -> None:
    """In a fresh interpreter, `import rudder_analytics.cli` imports nothing of the dev server."""
    code = ("import sys, rudder_analytics.cli\n"
            "loaded = [m for m in sys.modules if m.startswith('rudder_analytics.devserver')]\n"
            "assert not loaded, loaded\n"
            "assert callable(rudder_analytics.cli.main)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_modules_are_under_400_lines() -> None:
    """Every module of the package is under ~400 lines."""
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines())
             for path in CLI.glob("*.py")}
    assert sizes and all(lines < 400 for lines in sizes.values()), sizes


def test_no_function_is_too_complex() -> None:
    """ruff's C901 check with max-complexity 12 passes on the package."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    result = subprocess.run(
        [ruff, "check", "--select", "C901", "--config", "lint.mccabe.max-complexity=12",
         str(CLI)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_console_script_entry_point() -> None:
    """setup.cfg's console script is rudder_analytics.cli:main."""
    setup_cfg = (CLI.parent.parent / "setup.cfg").read_text(encoding="utf-8")
    assert "rudder-analytics = rudder_analytics.cli:main" in setup_cfg
