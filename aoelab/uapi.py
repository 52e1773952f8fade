"""The UAPI Version Format Specification: how systemd-boot orders Boot Loader Spec entries by
their `version`, and `systemd-analyze compare-versions`. It starts from rpmvercmp
(aoeboot.kver, the order the product uses for kernels) but is not the same: the separators
count. Before each run of digits or letters, a prefix ranks it: `~` oldest (older even than the
end), then the end, then `-` (version from release), then `^`, then `.`, then no prefix at all,
newest. Other characters are dropped. So `6.1-1` < `6.1.1` and `123a` > `123.a` (rpm: equal),
`1.0-1` < `1.0^1` (rpm: the other way). The tests hold the two orders side by side.
"""

from __future__ import annotations

import functools

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


def compare(a: str, b: str) -> int:
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


sort_key = functools.cmp_to_key(compare)
