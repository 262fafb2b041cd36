"""The demo's cockpit in a process of its own, serving the historian while the line runs."""

from __future__ import annotations

import atexit
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

__all__ = ["CockpitProcess"]


class CockpitProcess:
    """``biopilot serve`` on ``db`` as a child process (own interpreter: the live line's
    monitor and the web server do not share a GIL), its output in ``log``.

    Parameters
    ----------
    db : Path
        The historian the live line writes (SQLite: the cockpit reads it as it grows).
    port : int
        HTTP port on 127.0.0.1.
    log : Path
        Where the server's output goes (the demo logins among it).
    """

    def __init__(self, db: Path, port: int, log: Path) -> None:
        self.db, self.port, self.log = db, port, log
        self.url = f"http://127.0.0.1:{port}/"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start serving (the historian file must exist); return at once."""
        cmd = [sys.executable, "-m", "biopilot.cli.main", "serve", "--db", str(self.db),
               "--port", str(self.port), "--demo-users"]  # fmt: skip
        self._log = self.log.open("wb")
        # A session of its own: the terminal's Ctrl-C stops the line early (see `biopilot
        # run`), not the cockpit, which serves on until the end (stop(), also at exit).
        self._proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        atexit.register(self.stop)

    def ready(self, timeout_s: float = 60.0) -> bool:
        """Wait until the cockpit answers (False if it exited or did not answer in time)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and self.running:
            try:
                with urllib.request.urlopen(self.url, timeout=2.0) as resp:
                    return bool(resp.status == 200)
            except OSError:
                time.sleep(0.3)
        return False

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def wait(self) -> None:
        """Serve until the process ends or Ctrl-C (then stop it)."""
        if self._proc is None:
            return
        try:
            self._proc.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the server (a graceful terminate, then kill)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
