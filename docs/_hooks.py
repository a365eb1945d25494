"""mkdocs hooks for this site (not a page: excluded from the built site in mkdocs.yml).

- The pages are written for GitHub too, where a nested list is indented by two spaces.
  Python-Markdown needs four, and flattens two-space nesting, so list blocks indented by
  two spaces have their indentation doubled before rendering (fenced code inside them is
  shifted as a whole, keeping its own indentation). Lists already indented by four are
  left alone.
- The package's docstrings use reST roles (``:meth:`Client.flush```), which Markdown
  renders as the literal role followed by the code. The role is dropped and the code
  kept; ``~a.b.Name`` (reST for "show only the last part") becomes ``Name``, and
  ``Text <target>`` shows ``Text``. A paragraph ending in reST's ``::`` (a literal
  block follows) ends in ``:``, and a paragraph of only ``::`` is dropped.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(
    r":(?:py:)?(?:meth|class|func|attr|exc|mod|data|obj|const):"
    r"<code>(?P<tilde>~)?(?P<text>[^<]*?)(?:\s*&lt;[^<]*?&gt;)?</code>"
)
_LITERAL_MARK = re.compile(r"(?:<p>::</p>\s*|::(?=</p>\s*<div class=\"highlight\">))")
_ITEM = re.compile(r"^(?P<indent> *)(?:[-*+]|\d+[.)])[ \t]+\S")
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _list_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) line ranges of top-level lists, end exclusive, fences skipped over."""
    blocks: list[tuple[int, int]] = []
    start = None
    fence = None
    previous_blank = False
    for number, line in enumerate(lines):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and line.strip().startswith(fence):
                fence = None
            continue
        if opening:
            fence = opening["fence"][0] * len(opening["fence"])
        blank = not line.strip()
        if not blank and _indent(line) == 0:
            if _ITEM.match(line):
                if start is None:
                    start = number
            elif start is not None and (previous_blank or opening):
                blocks.append((start, number))
                start = None
        previous_blank = blank
    if start is not None:
        blocks.append((start, len(lines)))
    return blocks


def _nested_unit(lines: list[str]) -> int:
    """The smallest indentation of a nested list item or fence in a block (0: none)."""
    indents = [
        _indent(line) for line in lines
        if _indent(line) > 0 and (_ITEM.match(line) or _FENCE.match(line))
    ]
    return min(indents, default=0)


def _double(lines: list[str]) -> list[str]:
    """Double leading spaces; shift fenced code by its opening line's shift."""
    out: list[str] = []
    shift = 0
    fence = None
    for line in lines:
        if fence is not None:
            out.append(" " * shift + line if line.strip() else line)
            if line.strip().startswith(fence):
                fence = None
            continue
        opening = _FENCE.match(line)
        shift = _indent(line)
        out.append(" " * shift + line)
        if opening:
            fence = opening["fence"]
    return out


def widen_lists(markdown: str) -> str:
    """Re-indent two-space nested lists to four spaces (see the module docstring)."""
    lines = markdown.split("\n")
    for start, end in reversed(_list_blocks(lines)):
        unit = _nested_unit(lines[start:end])
        if 0 < unit < 4:
            lines[start:end] = _double(lines[start:end])
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Make GitHub-style list nesting render the same in the site."""
    return widen_lists(markdown)


def on_page_content(html: str, **_: Any) -> str:
    """Render the docstrings' reST roles and ``::`` marks as Markdown would mean them."""
    html = _LITERAL_MARK.sub(lambda m: "" if m[0].startswith("<p>") else ":", html)
    return _ROLE.sub(_code, html)


def _code(match: re.Match[str]) -> str:
    """One role: its code, shortened to the last dotted part after a ``~``."""
    text = match["text"]
    if match["tilde"]:
        name, paren, rest = text.partition("(")
        text = name.rsplit(".", 1)[-1] + paren + rest
    return f"<code>{text}</code>"
