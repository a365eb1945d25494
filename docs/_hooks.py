"""mkdocs hooks for this site (not a page: excluded from the built site in mkdocs.yml).

The package's docstrings use reST roles (``:meth:`Client.flush```), which Markdown
renders as the literal role followed by the code. Drop the role and keep the code;
``~a.b.Name`` (reST for "show only the last part") becomes ``Name``.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(
    r":(?:py:)?(?:meth|class|func|attr|exc|mod|data|obj|const):<code>(?:~(?:[\w]+\.)*)?"
)


def on_page_content(html: str, **_: Any) -> str:
    """Remove reST role prefixes in front of inline code in rendered pages."""
    return _ROLE.sub("<code>", html)
