"""``python -m rudder_analytics``: the ``rudder-analytics`` command (see :mod:`.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
