"""Whole-run guards: no test may hang the suite, or leave a thread that keeps it from ending."""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback

import pytest

#: Seconds a thread still finishing its work as the run ends is waited for.
_GRACE_S = float(os.environ.get("BIOPILOT_THREAD_GRACE_S", "30"))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Fail the run, naming them, if threads a test started still run after the last test.

    The interpreter waits for every non-daemon thread before it exits: one left retrying a
    server the test has stopped would hold the run (and CI) until it is killed, with no word
    of which test left it.
    """
    deadline = time.monotonic() + _GRACE_S
    for thread in _left():
        thread.join(max(0.0, deadline - time.monotonic()))
    left = _left()
    if not left:
        return
    frames = sys._current_frames()
    sys.stderr.write(f"\n{len(left)} thread(s) left running after the tests:\n")
    for thread in left:
        stack = frames.get(thread.ident or -1)
        sys.stderr.write(f"--- {thread.name}\n")
        sys.stderr.write("".join(traceback.format_stack(stack)) if stack else "(no stack)\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(3)  # not a normal exit: that would wait for them forever


def _left() -> list[threading.Thread]:
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]
