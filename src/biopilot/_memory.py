"""Keep freed heap memory in the process for reuse, where glibc's malloc allows it."""

from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: Environment variable that turns the setting off ("0").
OPT_OUT = "BIOPILOT_RETAIN_MEMORY"


def retain_freed_memory() -> bool:
    """Let malloc keep freed memory for the next allocation instead of handing it back.

    glibc serves blocks above 32 MiB (a 4K frame's feature maps, FFT buffers) by ``mmap`` and
    unmaps them on ``free``; on virtual machines that report free pages to the host
    (virtio-balloon), touching such memory again costs a fault on the host, ~3 s per GiB on
    this project's 2-core VM, and a 4K frame's analysis allocated several GiB that way:
    8.6-11.8 s against 4.6-6.3 s once the memory stays in the process (``frame_speed.py``,
    RESULTS.md, session 16). Here every block comes from the heap (``M_MMAP_MAX`` 0) and the
    heap is never trimmed (``M_TRIM_THRESHOLD`` the largest size), so the process keeps its
    peak size: the right trade for a service analysing frame after frame. Set
    ``BIOPILOT_RETAIN_MEMORY=0`` before importing biopilot to keep the allocator's defaults.
    Done by hand with ctypes: no package exposes ``mallopt``.

    Returns
    -------
    bool
        Whether both settings took (False off Linux, on another C library, or opted out).
    """
    if os.environ.get(OPT_OUT, "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and others: no glibc mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # -1 reads as SIZE_MAX: glibc stores the threshold as size_t
    return bool(mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, -1) == 1)
