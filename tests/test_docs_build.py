"""The documentation site builds with ``mkdocs build --strict``: no broken link or anchor,
no page left out of the navigation, no docstring the API reference cannot render.

Skipped only when mkdocs is not installed (scripts/test installs the ``docs`` extra,
so CI runs it). The build needs no network: the theme's web fonts are off.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed (the docs extra)"
)


def test_site_builds_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict`` succeeds and renders the API reference from the docstrings."""
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("rudder_analytics.Client.track", "rudder_analytics.Batch",
                 "rudder_analytics.testing.CapturedEvents", "rudder_analytics.devserver.DevServer",
                 "rudder_analytics.DeliveryError", "rudder_analytics.StatsSnapshot"):
        assert f'id="{name}"' in api, f"{name} missing from the API reference"
    assert ":meth:" not in api  # the reST roles of the docstrings are rendered as code
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in home  # theme.font: false: nothing fetched

