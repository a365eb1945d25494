"""rudder-analytics demo --keep-running, in a real subprocess: the local data plane's web
page is printed and answers, and Ctrl-C stops it with the demo's own exit status."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def test_demo_keep_running_serves_until_ctrl_c() -> None:
    """The 'watch events at URL' page answers while the demo keeps running; Ctrl-C exits 0."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "rudder_analytics", "demo", "--keep-running"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "press Ctrl-C to stop" in line:
                break
        text = "".join(seen)
        assert "all 6 events arrived" in text, text
        [watch] = [line for line in seen if line.startswith("watch events at ")]
        url = watch.split("watch events at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.status == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped" in out
