"""Every ```python block in README.md and docs/**/*.md runs as is and exits 0.

Each block runs in a fresh interpreter, in a temporary working directory, with
RUDDER_WRITE_KEY=test-key and RUDDER_DATA_PLANE_URL pointing at a local data plane
that accepts that key, within 30 s. A block whose preceding line is
``<!-- snippet: syntax-only -->`` (a reason may follow inside the comment) is only
compiled. A block that defines ``test_*`` functions is a pytest file: it runs under
pytest, so the testing guide's examples are exercised, not just defined.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rudder_analytics.devserver import DevServer

ROOT = Path(__file__).resolve().parent.parent
WRITE_KEY = "test-key"
TIMEOUT = 30.0

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})[ \t]*python[ \t]*$")
_SYNTAX_ONLY = re.compile(r"^\s*<!--\s*snippet:\s*syntax-only\b.*-->\s*$")
_TEST_FUNCTION = re.compile(r"^(?:async\s+)?def test_\w*\(", re.MULTILINE)


@dataclass(frozen=True)
class Snippet:
    """One ```python block: where it is, its code, and whether it is only compiled."""

    path: str
    line: int
    code: str
    syntax_only: bool

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"


def parse_snippets(text: str, path: str) -> list[Snippet]:
    """The ```python blocks of one Markdown text; ``line`` is the opening fence's line."""
    lines = text.splitlines()
    found: list[Snippet] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        syntax_only = start > 0 and bool(_SYNTAX_ONLY.match(lines[start - 1]))
        code = textwrap.dedent("\n".join(body)) + "\n"
        found.append(Snippet(path, start + 1, code, syntax_only))
        i += 1
    return found


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _collect() -> list[Snippet]:
    snippets: list[Snippet] = []
    for document in _documents():
        relative = document.relative_to(ROOT).as_posix()
        snippets.extend(parse_snippets(document.read_text(encoding="utf-8"), relative))
    return snippets


SNIPPETS = _collect()


@pytest.fixture(scope="module")
def snippet_dataplane() -> Iterator[DevServer]:
    """One local data plane for every snippet of the run, accepting ``test-key``."""
    with DevServer(write_keys=(WRITE_KEY,)) as server:
        yield server


def test_parser_finds_blocks_markers_and_indented_fences() -> None:
    """The collector sees plain and indented blocks, honours the marker, skips other languages."""
    text = (
        "intro\n"
        "```python\nprint(1)\n```\n"
        "<!-- snippet: syntax-only (placeholder URL) -->\n"
        "```python\nawait x\n```\n"
        "```bash\necho no\n```\n"
        "- a list item:\n\n"
        "  ```python\n  def f():\n      return 2\n  ```\n"
    )
    snippets = parse_snippets(text, "x.md")
    assert [(s.line, s.syntax_only) for s in snippets] == [(2, False), (6, True), (14, False)]
    assert snippets[2].code == "def f():\n    return 2\n"


def test_readme_first_example_runs() -> None:
    """The README's first Python block is executed, not only compiled (newcomers copy it)."""
    readme = [s for s in SNIPPETS if s.path == "README.md"]
    assert readme, "README.md has no ```python block"
    assert not readme[0].syntax_only


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_snippet(snippet: Snippet, snippet_dataplane: DevServer, tmp_path: Path) -> None:
    """The block compiles; unless marked syntax-only, it runs in a fresh process and exits 0."""
    compile(snippet.code, snippet.id, "exec")
    if snippet.syntax_only:
        return
    is_test_file = bool(_TEST_FUNCTION.search(snippet.code))
    script = tmp_path / ("test_snippet.py" if is_test_file else "snippet.py")
    script.write_text(snippet.code, encoding="utf-8")
    command = [sys.executable, str(script)]
    if is_test_file:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    env = {
        **os.environ,
        "RUDDER_WRITE_KEY": WRITE_KEY,
        "RUDDER_DATA_PLANE_URL": snippet_dataplane.url,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    try:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{snippet.id}: still running after {TIMEOUT:.0f} s\n{exc.stderr!r}")
    assert done.returncode == 0, (
        f"{snippet.id} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
