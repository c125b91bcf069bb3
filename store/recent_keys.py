"""What the writer remembers of the keys it committed lately, to drop duplicate deliveries
without asking the database (see :mod:`store.writer`)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

_BUCKET_US = 1_000_000  # forgotten one second of event time at a time


class RecentKeys:
    """One table's keys stored with an event time at or after ``floor`` (µs), with those times.

    It holds all of them: it starts with its floor above the newest stored time, it is given
    every committed row, and when it holds more than ``capacity`` keys it forgets the oldest
    second of event time and raises the floor past it. So for a time range starting at or above
    the floor it answers what the database would; below it, the database is asked.
    """

    def __init__(self, newest_stored: int, capacity: int) -> None:
        self.capacity = capacity
        self.newest = newest_stored  # no stored row is newer (nor any row that may be)
        self.floor = newest_stored + 1
        self.size = 0
        self._buckets: dict[int, dict[str, int]] = {}  # second → key → event time
        self._seconds: list[int] = []  # the seconds of ``_buckets``, a heap (oldest first)

    def stored(self, keys: set[str], low: int, high: int) -> set[str]:
        """Which of ``keys`` are stored with an event time in [low, high]; needs low >= floor."""
        found: set[str] = set()
        for second in self._seconds_between(low // _BUCKET_US, high // _BUCKET_US):
            times = self._buckets[second]
            for key in times.keys() & keys:
                if low <= times[key] <= high:
                    found.add(key)
        return found

    def _seconds_between(self, first: int, last: int) -> Iterable[int]:
        """The seconds held from ``first`` to ``last``, by whichever is shorter to walk."""
        if last - first < len(self._buckets):
            return (second for second in range(first, last + 1) if second in self._buckets)
        return [second for second in self._buckets if first <= second <= last]

    def _bucket(self, second: int) -> dict[str, int]:
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = {}
            heapq.heappush(self._seconds, second)
        return bucket

    def add(self, keys: Sequence[str], times: Sequence[int]) -> None:
        """Remember committed rows (``times`` in µs, one per key)."""
        if not keys:
            return
        low, high = min(times), max(times)
        self.newest = max(self.newest, high)
        if low // _BUCKET_US == high // _BUCKET_US and low >= self.floor:
            bucket = self._bucket(low // _BUCKET_US)
            before = len(bucket)
            bucket.update(zip(keys, times, strict=True))
            self.size += len(bucket) - before
        else:
            for key, time_us in zip(keys, times, strict=True):
                if time_us >= self.floor:  # older ones are the database's to answer
                    bucket = self._bucket(time_us // _BUCKET_US)
                    self.size -= len(bucket)
                    bucket[key] = time_us
                    self.size += len(bucket)
        while self.size > self.capacity:
            second = heapq.heappop(self._seconds)
            self.size -= len(self._buckets.pop(second))
            self.floor = max(self.floor, (second + 1) * _BUCKET_US)

    def forget(self, newest: int) -> None:
        """Forget everything: rows up to ``newest`` may or may not have been committed."""
        self.newest = max(self.newest, newest)
        self.floor = self.newest + 1
        self._buckets.clear()
        self._seconds.clear()
        self.size = 0
