"""Where a change's before/after windows lie, once the other changes around it are known.

For a change at time ``t`` in an environment whose data runs from ``first`` to ``last``:

- its *reach* is ``[floor(t) - h, ceil(t) + h)`` cut to the data (``h``, the half-width, is
  24 h): the services that evaluated its flag there are its *affected services*, and the other
  changes of the environment there are its *candidates* (neighbours, when they affect one of
  the same services);
- its *nominal* windows are two equal windows of whole minutes, ``[floor(t) - w, floor(t))``
  and ``[ceil(t), ceil(t) + w)``, ``w`` at most ``h`` and at least :data:`MIN_HALF_WIDTH`, cut
  to the data (the minute of the change belongs to neither side);
- each affected service has its own *windows* (:func:`plan_windows`): the nominal ones
  shortened, both to one width, so that no neighbour on that service falls inside them. A
  neighbour too close to leave out (less than :data:`MIN_HALF_WIDTH` would be left on its
  side) is *confounded* with the change: on that service the two are compared as one, from
  before the first to after the last, and both say so. When not even that leaves an hour a
  side, the service has no windows;
- each affected service's *burn window* runs from the start of its after window to the next
  neighbour on that service, or the end of the reach (never shorter than the after window):
  the error budget burned there is what was burned while the change was the latest on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from analytics.windows import TimeWindow

HALF_WIDTH = timedelta(hours=24)
MIN_HALF_WIDTH = timedelta(hours=1)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class LedgerChange:
    """A change of the ledger as the windows see it."""

    change_id: str
    time: datetime
    flag: str
    environment: str


def floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def ceil_minute(at: datetime) -> datetime:
    floor = floor_minute(at)
    return floor if floor == at else floor + _MINUTE


def comparison_windows(
    at: datetime,
    bounds: tuple[datetime | None, datetime | None],
    half_width: timedelta = HALF_WIDTH,
) -> tuple[TimeWindow, TimeWindow] | None:
    """The nominal before/after windows of a change at ``at`` within the data ``bounds``.

    Both are ``w`` long, in whole minutes, ``w`` at most ``half_width`` and at least
    :data:`MIN_HALF_WIDTH` (None when the data leaves less); the minute of the change itself
    is in neither.
    """
    first, last = bounds
    if first is None or last is None:
        return None
    end_before, start_after = floor_minute(at), ceil_minute(at)
    width = min(half_width, end_before - first, last - start_after)
    width = timedelta(minutes=width // _MINUTE)
    if width < MIN_HALF_WIDTH:
        return None
    return (
        TimeWindow(end_before - width, end_before),
        TimeWindow(start_after, start_after + width),
    )


def reach(
    at: datetime,
    bounds: tuple[datetime | None, datetime | None],
    half_width: timedelta = HALF_WIDTH,
) -> TimeWindow | None:
    """``[floor(at) - half_width, ceil(at) + half_width)`` within the data (None: no data)."""
    first, last = bounds
    if first is None or last is None:
        return None
    start = max(first, floor_minute(at) - half_width)
    end = min(last, ceil_minute(at) + half_width)
    return TimeWindow(start, end) if end > start else None


@dataclass(frozen=True, slots=True)
class Windows:
    """One affected service's windows, after looking at the other changes on it."""

    before: TimeWindow | None
    after: TimeWindow | None
    adjusted_for: tuple[str, ...] = ()
    confounded_with: tuple[str, ...] = ()
    burn_until: datetime | None = None  # end of the burn window (None without windows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": _edges(self.before),
            "after": _edges(self.after),
            "adjusted_for": list(self.adjusted_for),
            "confounded_with": list(self.confounded_with),
            "burn_window": (
                None if self.after is None or self.burn_until is None
                else [self.after.start.isoformat(), self.burn_until.isoformat()]
            ),
        }  # fmt: skip


def _edges(window: TimeWindow | None) -> list[str] | None:
    return None if window is None else [window.start.isoformat(), window.end.isoformat()]


def plan_windows(
    change: LedgerChange,
    nominal: tuple[TimeWindow, TimeWindow],
    reach_window: TimeWindow,
    neighbours: list[LedgerChange],
) -> Windows:
    """The windows of one affected service of ``change``, given the other changes on that
    service in the change's reach (its ``neighbours``); see the module docstring."""
    near = sorted((c for c in neighbours if c != change), key=lambda c: (c.time, c.change_id))
    span_start, span_end = nominal[0].start, nominal[1].end
    inside = [c for c in near if span_start <= c.time < span_end]
    cluster = {change.change_id}
    low = high = change.time
    while True:
        for other in inside:  # whatever lies between members belongs to the cluster
            if low <= other.time <= high:
                cluster.add(other.change_id)
        earlier = [c for c in inside if c.time < low]
        later = [c for c in inside if c.time > high]
        start_limit = max((ceil_minute(c.time) for c in earlier), default=span_start)
        end_limit = min((floor_minute(c.time) for c in later), default=span_end)
        room_before = floor_minute(low) - start_limit
        room_after = end_limit - ceil_minute(high)
        grown = False
        if room_before < MIN_HALF_WIDTH and earlier:
            low, grown = earlier[-1].time, True
        if room_after < MIN_HALF_WIDTH and later:
            high, grown = later[0].time, True
        if not grown:
            break
    width = timedelta(minutes=min(room_before, room_after) // _MINUTE)
    adjusted = tuple(c.change_id for c in inside if c.change_id not in cluster)
    confounded = tuple(sorted(cluster - {change.change_id}))
    if width < MIN_HALF_WIDTH:
        return Windows(None, None, adjusted, confounded)
    end_before, start_after = floor_minute(low), ceil_minute(high)
    after = TimeWindow(start_after, start_after + width)
    ends = [floor_minute(c.time) for c in near if c.time > high and c.change_id not in cluster]
    burn_until = min([floor_minute(reach_window.end), *ends])
    return Windows(
        TimeWindow(end_before - width, end_before), after, adjusted, confounded,
        max(burn_until, after.end),
    )  # fmt: skip
