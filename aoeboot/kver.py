"""Kernel version ordering, in the two orders that exist.

rpm's rpmvercmp (`compare`, `sort_key`, `newest`): which kernel is newest, as dnf, rpm and
Fedora's own tools see it. `packaging.version` is PEP 440 and rejects `6.11.4-301.fc41.x86_64`.
Split into runs of digits or letters, everything else only separates; `~` sorts before anything
(even the end), `^` after the end but before anything else; numbers compare numerically and beat
letters. It runs over the whole `uname -r` string; rpm itself compares version and release
apart, which orders kernels the same way as long as their versions have the same number of
parts (Fedora's are always X.Y.Z).
"""

from __future__ import annotations

import functools
import re

_TOKEN = re.compile(r"[0-9]+|[A-Za-z]+|[~^]")


def _tokens(version: str) -> list[str]:
    return _TOKEN.findall(version)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is older than, equal to or newer than `b` (rpm's rpmvercmp)."""
    if a == b:
        return 0
    ta, tb = _tokens(a), _tokens(b)
    i = 0
    while True:
        x = ta[i] if i < len(ta) else None
        y = tb[i] if i < len(tb) else None
        if x == "~" or y == "~":
            if x != y:
                return -1 if x == "~" else 1
        elif x == "^" or y == "^":
            if x is None:
                return -1
            if y is None:
                return 1
            if x != y:
                return -1 if x == "^" else 1
        elif x is None or y is None:
            if x is None and y is None:
                return 0
            return -1 if x is None else 1
        elif x.isdigit() != y.isdigit():
            return 1 if x.isdigit() else -1
        elif x.isdigit():
            nx, ny = int(x), int(y)
            if nx != ny:
                return 1 if nx > ny else -1
        elif x != y:
            return 1 if x > y else -1
        i += 1


sort_key = functools.cmp_to_key(compare)


def newest(versions: list[str]) -> str:
    return max(versions, key=sort_key)
