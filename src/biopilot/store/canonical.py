"""RFC 8785 canonical JSON: the one byte form of a value that the audit chain and signatures hash.

Object keys sorted by their UTF-16 code units, no whitespace, UTF-8, strings escaped as
ECMAScript's ``JSON.stringify`` does, numbers in ECMAScript's shortest round-trip form
(``1.0`` -> ``1``, ``1e+21``, ``1e-7``); NaN and infinities are refused. One deviation from
RFC 8785: integers are written exactly, not rounded through an IEEE double.

Example
-------
>>> canonical_json({"b": [1.0, None], "a": "é"})
b'{"a":"\\xc3\\xa9","b":[1,null]}'
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

__all__ = ["Canonical", "canonical_json", "to_canonical"]

_quote: Callable[[str], str] = json.encoder.encode_basestring


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 (JCS) canonical UTF-8 JSON of ``value``; ValueError if not JSON."""
    return _enc(value).encode("utf-8")


def to_canonical(value: Any) -> str:
    """Return the canonical JSON of ``value`` as text (see :func:`canonical_json`)."""
    return _enc(value)


class Canonical(str):
    """JSON text already canonical, written verbatim inside a larger canonical value."""


def _enc(v: Any) -> str:
    """Serialise one JSON value the RFC 8785 way (see the module docstring)."""
    if isinstance(v, Canonical):
        return str(v)
    if v is None or isinstance(v, bool):
        return {None: "null", True: "true", False: "false"}[v]
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _number(v)
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, Mapping):
        if not all(isinstance(k, str) for k in v):
            raise ValueError("JSON object keys must be strings")
        keys = sorted(v)  # RFC 8785 §3.2.3: by UTF-16 code units, as code points within the BMP
        if any(max(k) > "\uffff" for k in keys if not k.isascii()):
            keys.sort(key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(f"{_quote(k)}:{_enc(v[k])}" for k in keys) + "}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(_enc(x) for x in v) + "]"
    raise ValueError(f"not a JSON value: {type(v).__name__}")


def _number(x: float) -> str:
    """ECMAScript Number::toString of a finite double (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(x):
        raise ValueError(f"JSON has no {x!r}")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr is the shortest round-trip decimal, as ECMAScript requires.
    _, raw, exp = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, raw)).rstrip("0")
    n = int(exp) + len(raw)  # the decimal point sits after n digits
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    mant = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{mant}e{'+' if n > 0 else '-'}{abs(n - 1)}"
