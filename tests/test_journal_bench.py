"""benchmarks/journal_bench.py runs end to end and prints every row (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "journal_bench.py"


def test_journal_bench_prints_its_rows() -> None:
    """A tiny run prints the memory-only and journal rows of the table."""
    out = subprocess.run(
        [sys.executable, str(BENCH), "--events", "2000", "--rounds", "1", "--backlog", "2000"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    for row in ("track() caller cost", "CPU per event", "group-commit interval",
                "time-to-commit", "recovery after restart"):
        assert row in out
