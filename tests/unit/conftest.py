"""Fixtures of the unit layer: every behavioural scenario runs against both drivers."""

from __future__ import annotations

import pytest

from .fakes import Deliver


@pytest.fixture(params=["sync", "async"])
def deliver(request: pytest.FixtureRequest) -> Deliver:
    """Run a delivery through the blocking or the asyncio driver, on a fake clock."""
    return Deliver(request.param)
