"""The suite's own guard: a test that leaves a thread running fails the run, never hangs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LEAK = '''
import threading

def test_leaves_a_thread() -> None:
    threading.Thread(target=threading.Event().wait, name="retrying-forever").start()
'''


def test_a_thread_left_running_fails_the_run_and_is_named(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_leak.py").write_text(LEAK)
    env = os.environ | {"BIOPILOT_THREAD_GRACE_S": "0.5"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 3, run.stdout + run.stderr
    assert "1 passed" in run.stdout  # the tests' own result is still reported
    assert "retrying-forever" in run.stderr and "1 thread(s) left running" in run.stderr
