"""Kernel version ordering, in the two orders that exist.

rpm's rpmvercmp (`compare`, `sort_key`, `newest`): which kernel is newest, as dnf, rpm and
Fedora's own tools see it. `packaging.version` is PEP 440 and rejects `6.11.4-301.fc41.x86_64`.
Split into runs of digits or letters, everything else only separates; `~` sorts before anything
(even the end), `^` after the end but before anything else; numbers compare numerically and beat
letters. It runs over the whole `uname -r` string; rpm itself compares version and release
apart, which orders kernels the same way as long as their versions have the same number of
parts (Fedora's are always X.Y.Z).

The UAPI Version Format Specification (`uapi_compare`, `uapi_sort_key`): how systemd-boot orders
Boot Loader Spec entries by their `version`, and `systemd-analyze compare-versions`. It starts
from rpmvercmp but is not the same: the separators count. Before each run of digits or letters,
a prefix ranks it: `~` oldest (older even than the end), then the end, then `-` (version from
release), then `^`, then `.`, then no prefix at all, newest. Other characters are dropped. So
`6.1-1` < `6.1.1` and `123a` > `123.a` (rpm: equal), `1.0-1` < `1.0^1` (rpm: the other way).
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


_UAPI_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ~-^.")
_UAPI_PREFIXES = "-^."  # in this order, each ranks the run after it below the next one


def _run_end(text: str, start: int, digits: bool) -> int:
    end = start
    while (
        end < len(text)
        and text[end].isascii()
        and (text[end].isdigit() if digits else text[end].isalpha())
    ):
        end += 1
    return end


def uapi_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is older than, equal to or newer than `b` in the UAPI version format."""
    i = j = 0
    while True:
        while i < len(a) and a[i] not in _UAPI_CHARS:
            i += 1
        while j < len(b) and b[j] not in _UAPI_CHARS:
            j += 1
        x = a[i] if i < len(a) else ""
        y = b[j] if j < len(b) else ""
        if x == "~" or y == "~":  # a pre-release: older than anything, the end included
            if x != y:
                return -1 if x == "~" else 1
            i, j = i + 1, j + 1
            x = a[i] if i < len(a) else ""
            y = b[j] if j < len(b) else ""
        if not x or not y:  # one has run out: the longer is newer
            return (x > y) - (x < y)
        for prefix in _UAPI_PREFIXES:
            if x == prefix or y == prefix:
                if x != y:
                    return -1 if x == prefix else 1
                i, j = i + 1, j + 1
                x = a[i] if i < len(a) else ""
                y = b[j] if j < len(b) else ""
        digits = (x.isascii() and x.isdigit()) or (y.isascii() and y.isdigit())
        end_a, end_b = _run_end(a, i, digits), _run_end(b, j, digits)
        run_a, run_b = a[i:end_a], b[j:end_b]
        if digits:
            if bool(run_a) != bool(run_b):  # a number beats no number
                return 1 if run_a else -1
            na, nb = int(run_a), int(run_b)
            if na != nb:
                return 1 if na > nb else -1
        elif run_a != run_b:  # letters: by character, then the longer is newer
            return 1 if run_a > run_b else -1
        i, j = end_a, end_b


uapi_sort_key = functools.cmp_to_key(uapi_compare)
