"""What a dashboard view shows, kept in the URL so a view can be shared and bookmarked.

``?from=now-7d&to=now&service=checkout&env=prod&refresh=30s&change=chg-7-0056`` ⇄
:class:`ViewState`. Relative times (``now-6h``) are resolved on every render, so a bookmarked
"last 6 hours" stays the last six hours; ``from=this-week`` starts at Monday 00:00 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from analytics.errors import InvalidWindow
from analytics.windows import TimeWindow, parse_duration, parse_instant

# the time-range picker's relative choices: label → `from` value (to = now)
RELATIVE_RANGES = {
    "Last 1 hour": "now-1h",
    "Last 6 hours": "now-6h",
    "Last 24 hours": "now-24h",
    "Last 7 days": "now-7d",
    "Last 30 days": "now-30d",
    "This week": "this-week",
}
REFRESH_CHOICES = ("off", "10s", "30s", "1m", "5m")
MAX_PAGE = 1_000_000  # a page number past it is shown as the last page the URL may ask for
_QUERY_NAMES = {"start": "from", "end": "to", "environment": "env"}


@dataclass(frozen=True, slots=True)
class ViewState:
    start: str = "now-7d"
    end: str = "now"
    service: str | None = None
    environment: str | None = None
    refresh: str = "off"
    change: str | None = None
    slo: str | None = None
    page: int = 1

    @classmethod
    def from_query(cls, search: str | None) -> ViewState:
        """Parse ``location.search``; unknown keys are ignored, bad values fall back (a page
        number that is not ASCII digits to 1, one past :data:`MAX_PAGE` to it); times are
        checked when the window is built (:meth:`window`)."""
        values = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items() if v}
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            text = values.get(_QUERY_NAMES.get(f.name, f.name))
            if text is None or text == "":
                continue
            if f.name == "page":
                kwargs["page"] = _page_number(text)
            elif f.name == "refresh":
                kwargs["refresh"] = text if text in REFRESH_CHOICES else "off"
            else:
                kwargs[f.name] = text
        return cls(**kwargs)

    def to_query(self, **changes: Any) -> str:
        """The ``?...`` string of this state with ``changes`` applied (defaults omitted)."""
        state = replace(self, **changes) if changes else self
        default = ViewState()
        pairs = []
        for f in fields(state):
            value = getattr(state, f.name)
            if value is not None and value != getattr(default, f.name):
                pairs.append((_QUERY_NAMES.get(f.name, f.name), str(value)))
        return "?" + urlencode(pairs) if pairs else ""

    def window(self, now: datetime | None = None) -> TimeWindow:
        """The absolute window this state means now; raises InvalidWindow with the reason."""
        now = now or datetime.now(UTC)
        if self.start == "this-week":
            monday = now - timedelta(days=now.weekday())
            start = monday.replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            start = parse_instant(self.start, now=now)
        return TimeWindow(start, parse_instant(self.end, now=now))

    def refresh_ms(self) -> int | None:
        if self.refresh == "off":
            return None
        try:
            return int(parse_duration(self.refresh).total_seconds() * 1000)
        except InvalidWindow:
            return None


def _page_number(text: str) -> int:
    # "²" and "٣" are digits to str.isdigit; 5,000 digits are past int()'s limit
    if not (text.isascii() and text.isdigit()):
        return 1
    if len(text) > len(str(MAX_PAGE)):
        return MAX_PAGE
    return min(MAX_PAGE, max(1, int(text)))


def bucket_for(window: TimeWindow, points: int = 120) -> timedelta:
    """A round bucket size giving at most about ``points`` buckets over the window."""
    target = window.duration / points
    for size in (
        timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15),
        timedelta(minutes=30), timedelta(hours=1), timedelta(hours=3), timedelta(hours=6),
        timedelta(hours=12), timedelta(days=1),
    ):  # fmt: skip
        if size >= target:
            return size
    return timedelta(days=7)
