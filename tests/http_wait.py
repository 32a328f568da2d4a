"""Wait for a server a test started to answer over HTTP (one loop for every test that starts one)."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable


def wait_for_http(url: str, proc: subprocess.Popen, output: Callable[[], str], timeout: float, what: str) -> None:
    """Poll ``url`` until it answers 200; fail with ``output()`` (the server's log) when ``proc`` exits first,
    and with ``what`` named when ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        assert proc.poll() is None, output()[-3000:]
        assert time.monotonic() < deadline, f"{what} did not answer {url} in {timeout:g} s"
        time.sleep(0.5)
