"""Which decisions the journal evicts when it is full. Pure: counts in, rows to remove out.

The journal keeps at most `keep` decisions in total. A global "newest N" let one sandbox that sent
100,000 denied requests in ten seconds erase every other session's history, its one real `allow`
included. So eviction is fair and takes from the largest first:

1. Denials (everything but `allow`) older than their session's newest `keep_per_session` go first,
   from the session with the most decisions: it is trimmed to the size of the next one, and so on.
2. Only if that is not enough (every session is small, or holds nothing but allows), any decision
   goes, again from the session with the most decisions first, oldest first.

So a flood of requests from one session evicts only that session's own older denials: every other
session keeps what it had, and the flooding session keeps its allows and its newest decisions. The
bound on the file holds whatever happens.
"""

from __future__ import annotations

from collections.abc import Mapping


def level_cuts(sizes: Mapping[str, int], needed: int, floor: int = 0) -> dict[str, int]:
    """How many rows each session gives up so that at least `needed` go, taking from the largest first:
    every session above some level L is cut to L, never below `floor`. Fewer than `needed` rows go
    only if cutting everyone to `floor` is not enough. Sessions that give nothing are left out."""
    if needed <= 0:
        return {}
    level = _level(sorted(sizes.values(), reverse=True), needed, floor)
    return {sid: size - level for sid, size in sizes.items() if size > level}


def _level(sizes_desc: list[int], needed: int, floor: int) -> int:
    """The highest level L >= floor at which cutting every size above L frees at least `needed`."""
    freed = 0  # rows freed by cutting the sessions seen so far down to the current size
    for i, size in enumerate(sizes_desc):
        if size <= floor:
            break
        below = max(sizes_desc[i + 1] if i + 1 < len(sizes_desc) else floor, floor)
        width = i + 1  # the sessions cut together from `size` down towards `below`
        if freed + width * (size - below) >= needed:
            return size - -(-(needed - freed) // width)  # ceil: a few rows more, never fewer
        freed += width * (size - below)
    return floor
