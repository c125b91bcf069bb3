"""Changes near each other on one service, on hand-built stores: who is blamed, and whose
error budget burn is whose.

Service ``web`` answers every 12 s (300 spans an hour) with 1 % errors (every 100th span),
10 % (every 10th) after the regressions below. Expected counts are computed from those indices.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.governance import load_rules
from analytics.impact import change_impacts
from analytics.slo import parse_slo
from analytics.windows import TimeWindow
from contracts.signing import KeyRing
from tests.analytics.helpers import add_change, add_decisions, add_spans

T0 = datetime(2026, 11, 16, tzinfo=UTC)
EVERY = timedelta(seconds=12)
PER_HOUR = 300
SLO = parse_slo(
    {"name": "web-availability", "service": "web", "sli": "availability", "objective": 0.99},
    "test",
)


def _at(hours: float, seconds: int = 30) -> datetime:
    return T0 + timedelta(hours=hours, seconds=seconds)


def _web(store, hours: int, worse_from: float | None, *, service: str = "web") -> list[bool]:
    """``hours`` of spans on ``service``; failed every 100th, every 10th from ``worse_from``."""
    count = hours * PER_HOUR
    first_bad = count if worse_from is None else int(worse_from * PER_HOUR) + 1
    failed = [i % (10 if i >= first_bad else 100) == 0 for i in range(count)]
    add_spans(store, service=service, start=T0, every=EVERY, count=count,
              errors={i for i, bad in enumerate(failed) if bad})  # fmt: skip
    return failed


def _flag(store, flag: str, services: tuple[str, ...], hours: int) -> None:
    """A decision for ``flag`` on each service every hour (it affects those services)."""
    times = [T0 + timedelta(hours=h, minutes=30) for h in range(hours)]
    for service in services:
        add_decisions(store, flag=flag, version="v1", service=service, times=times)


def _change(store, number: int, flag: str, at: datetime) -> None:
    attributes = {
        "policy.change.id": f"chg-{flag}", "feature_flag.key": flag, "feature_flag.version": "v2",
        "policy.module": "release", "policy.change.actor": "alice@example.com",
        "deployment.environment.name": "prod", "policy.change.approvers": ["dana@example.com"],
    }  # fmt: skip
    add_change(store, attributes, at, request_id=number)


def _bad(failed: list[bool], start: datetime, end: datetime) -> int:
    """Failed spans starting in [start, end)."""
    return sum(1 for i, bad in enumerate(failed) if bad and start <= T0 + i * EVERY < end)


def _impacts(store, hours: int):
    found = change_impacts(
        store.cursor(), TimeWindow(T0, T0 + timedelta(hours=hours)), [SLO], load_rules(),
        KeyRing({}),
    )  # fmt: skip
    return {i.change.change_id: i for i in found}


def test_a_harmless_change_three_hours_after_a_regression_is_not_blamed(tmp_path, store_maker):
    """Its windows leave the regression out; the regression's end before it; another service
    of the regression keeps its full windows."""
    store = store_maker.new(tmp_path)
    _web(store, 30, worse_from=12)
    _web(store, 30, worse_from=12, service="side")
    _flag(store, "bad", ("web", "side"), 30)
    _flag(store, "calm", ("web",), 30)
    _change(store, 1, "bad", _at(12))
    _change(store, 2, "calm", _at(15))
    found = _impacts(store, 30)
    harmless, regression = found["chg-calm"], found["chg-bad"]

    assert harmless.verdict == "no detectable effect"
    assert not any(e.counts for e in harmless.effects)
    web = harmless.windows["web"]
    assert web.adjusted_for == ("chg-bad",) and harmless.adjusted_for == ("chg-bad",)
    assert web.before.start == _at(12).replace(second=0) + timedelta(minutes=1)

    assert regression.verdict == "regression"
    assert regression.adjusted_for == ("chg-calm",) and regression.confounded_with == ()
    assert regression.windows["web"].after.end == _at(15).replace(second=0)
    assert regression.windows["side"].before.duration == timedelta(hours=12)
    worse = {(e.service, e.metric) for e in regression.effects if e.counts and e.worse}
    assert {("web", "error_rate"), ("side", "error_rate")} <= worse
    rows = harmless.as_dict()
    assert rows["windows"]["web"]["adjusted_for"] == ["chg-bad"]


def test_two_changes_minutes_apart_are_confounded_and_neither_is_called_the_regression(
    tmp_path, store_maker
):
    store = store_maker.new(tmp_path)
    _web(store, 30, worse_from=12)
    _flag(store, "first", ("web",), 30)
    _flag(store, "second", ("web",), 30)
    _change(store, 1, "first", _at(12))
    _change(store, 2, "second", _at(12, seconds=10 * 60 + 30))  # 12:10:30
    found = _impacts(store, 30)
    first, second = found["chg-first"], found["chg-second"]
    assert first.verdict == second.verdict == "confounded"
    assert first.confounded_with == ("chg-second",) and second.confounded_with == ("chg-first",)
    assert first.windows["web"].before.end == _at(12).replace(second=0)
    assert first.windows["web"].after.start == T0 + timedelta(hours=12, minutes=11)
    errors = next(e for e in first.effects if e.metric == "error_rate")
    assert errors.counts and errors.worse and errors.confounded_with == ("chg-second",)
    assert first.score_effect == "web error_rate"


def test_budget_burn_is_charged_to_the_change_whose_window_it_falls_in(tmp_path, store_maker):
    """A harmless change at 12:00 and a regression at 20:00: the harmless one's burn window
    ends at 20:00; the regression's runs on to the end of its reach."""
    store = store_maker.new(tmp_path)
    failed = _web(store, 48, worse_from=20)
    _flag(store, "calm", ("web",), 48)
    _flag(store, "bad", ("web",), 48)
    _change(store, 1, "calm", _at(12))
    _change(store, 2, "bad", _at(20))
    found = _impacts(store, 48)
    (calm,), (bad,) = found["chg-calm"].budgets, found["chg-bad"].budgets
    assert (calm.window.start, calm.window.end) == (T0 + timedelta(hours=12, minutes=1),
                                                    T0 + timedelta(hours=20))  # fmt: skip
    assert calm.bad == _bad(failed, calm.window.start, calm.window.end)
    assert calm.bad <= 0.01 * calm.total + 1  # the 1 %, none of the regression's 10 %
    assert calm.excess_share_of_budget == pytest.approx(0.0, abs=1e-3)
    assert (bad.window.start, bad.window.end) == (T0 + timedelta(hours=20, minutes=1),
                                                  T0 + timedelta(hours=44, minutes=1))  # fmt: skip
    assert bad.bad == _bad(failed, bad.window.start, bad.window.end)
    assert found["chg-calm"].verdict == "no detectable effect"
    assert found["chg-bad"].verdict == "regression"


def test_a_regression_forty_hours_later_is_not_charged_to_an_earlier_change(tmp_path, store_maker):
    """Out of the earlier change's reach: its burn window ends 24 hours after it."""
    store = store_maker.new(tmp_path)
    failed = _web(store, 64, worse_from=52)
    _flag(store, "calm", ("web",), 64)
    _flag(store, "bad", ("web",), 64)
    _change(store, 1, "calm", _at(12))
    _change(store, 2, "bad", _at(52))
    found = _impacts(store, 64)
    calm = found["chg-calm"]
    (burn,) = calm.budgets
    assert burn.window.end == T0 + timedelta(hours=36, minutes=1)
    assert burn.bad == _bad(failed, burn.window.start, burn.window.end)
    assert burn.bad < 25 * PER_HOUR // 100  # the 1 % of the day after it, none of the 10 %
    assert calm.adjusted_for == () and calm.verdict == "no detectable effect"
