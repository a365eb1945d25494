"""The documentation site builds with ``mkdocs build --strict``: no broken link or anchor,
no page left out of the navigation, no docstring the API reference cannot render.

The build test is skipped only when mkdocs is not installed (scripts/test installs the
``docs`` extra, so CI runs it). The build needs no network: the theme's web fonts are off.
README.md's relative links are checked too (mkdocs does not see README.md).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent

needs_mkdocs = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed (the docs extra)"
)
_LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)\s#]+)(?:#[^)]*)?\)")


def test_readme_links_point_at_files() -> None:
    """Every relative link in README.md names a file of the repository (they work on GitHub)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = _LINK.findall(readme)
    assert "docs/index.md" in targets
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


@needs_mkdocs
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
    integrations = (site / "reference" / "integrations" / "index.html").read_text("utf-8")
    assert 'id="rudder_analytics.integrations.django.RudderAnalyticsMiddleware"' in integrations
    assert "::</p>" not in integrations  # reST literal-block marks are not shown
    delivery = (site / "delivery" / "index.html").read_text(encoding="utf-8")
    assert "That covers:<ul>" in delivery  # a two-space nested list stays nested
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in home  # theme.font: false: nothing fetched



def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rudder_docs_hooks", ROOT / "docs" / "_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_space_lists_are_widened_and_code_keeps_its_shape() -> None:
    """GitHub-style two-space nesting becomes four spaces; fenced code shifts as a whole."""
    source = (
        "- item\n"
        "  - nested\n"
        "    continued\n"
        "- with code:\n"
        "\n"
        "  ```python\n"
        "  def f():\n"
        "      return 1\n"
        "  ```\n"
        "\n"
        "after\n"
        "  not a list\n"
    )
    assert _hooks().widen_lists(source) == (
        "- item\n"
        "    - nested\n"
        "        continued\n"
        "- with code:\n"
        "\n"
        "    ```python\n"
        "    def f():\n"
        "        return 1\n"
        "    ```\n"
        "\n"
        "after\n"
        "  not a list\n"
    )


def test_four_space_lists_are_left_alone() -> None:
    """A list already indented by four spaces is not re-indented (it would become code)."""
    source = "- item\n    - nested\n\n    more of item\n"
    assert _hooks().widen_lists(source) == source
