"""A change's windows once the other changes on the same service are known (pure planning)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from analytics.impact_windows import LedgerChange, comparison_windows, plan_windows, reach
from analytics.windows import TimeWindow

T = datetime(2026, 11, 18, 12, 0, 30, tzinfo=UTC)  # mid-minute: 12:00 is the settle gap
BOUNDS = (T - timedelta(days=3), T + timedelta(days=3))
H = timedelta(hours=1)
M = timedelta(minutes=1)


def _change(name: str, at: datetime) -> LedgerChange:
    return LedgerChange(name, at, f"flag-{name}", "prod")


def _plan(*neighbours: LedgerChange, bounds=BOUNDS):
    change = _change("a", T)
    nominal = comparison_windows(T, bounds)
    around = reach(T, bounds)
    assert nominal is not None and around is not None
    return plan_windows(change, nominal, around, list(neighbours))


def test_without_neighbours_the_windows_are_the_nominal_ones():
    planned = _plan()
    noon = T.replace(second=0)
    assert planned.before == TimeWindow(noon - 24 * H, noon)
    assert planned.after == TimeWindow(noon + M, noon + M + 24 * H)
    assert planned.burn_until == noon + M + 24 * H  # the end of the reach
    assert (planned.adjusted_for, planned.confounded_with) == ((), ())


def test_an_earlier_change_is_left_out_and_both_sides_shrink_alike():
    earlier = _change("b", T - 3 * H)  # 09:00:30: the before window starts at 09:01
    planned = _plan(earlier)
    noon = T.replace(second=0)
    assert planned.before == TimeWindow(noon - 3 * H + M, noon)
    assert planned.after == TimeWindow(noon + M, noon + M + 3 * H - M)
    assert planned.adjusted_for == ("b",) and planned.confounded_with == ()
    # the burn window is not cut by an earlier change
    assert planned.burn_until == noon + M + 24 * H


def test_a_later_change_ends_the_after_window_and_the_burn_window():
    later = _change("b", T + 5 * H)  # 17:00:30
    planned = _plan(later)
    noon = T.replace(second=0)
    assert planned.after == TimeWindow(noon + M, noon + 5 * H)
    assert planned.before == TimeWindow(noon - 5 * H + M, noon)
    assert planned.burn_until == noon + 5 * H
    assert planned.adjusted_for == ("b",)


def test_a_change_too_close_to_leave_out_is_compared_together_and_named():
    """Ten minutes apart: before the first against after the second, confounded."""
    close = _change("b", T + 10 * M)  # 12:10:30
    planned = _plan(close)
    noon = T.replace(second=0)
    assert planned.confounded_with == ("b",) and planned.adjusted_for == ()
    assert planned.before.end == noon
    assert planned.after.start == noon + 11 * M
    # the after window runs to the nominal one's end (12:01 the next day)
    assert planned.before.duration == planned.after.duration == 24 * H - 10 * M


def test_a_chain_of_close_changes_joins_the_cluster_and_a_far_one_is_left_out():
    chain = [_change("b", T + 40 * M), _change("c", T + 80 * M), _change("d", T + 6 * H)]
    planned = _plan(*chain)
    assert planned.confounded_with == ("b", "c")
    assert planned.adjusted_for == ("d",)
    assert planned.after.start == (T + 80 * M).replace(second=0) + M
    assert planned.after.end <= (T + 6 * H).replace(second=0)
    assert planned.burn_until == (T + 6 * H).replace(second=0)


def test_no_room_left_means_no_windows():
    """Data from 90 minutes before: a neighbour 50 minutes before joins the change, and
    before the pair only 39 minutes are left."""
    planned = _plan(_change("b", T - 50 * M), bounds=(T - 90 * M, BOUNDS[1]))
    assert planned.before is None and planned.after is None
    assert planned.confounded_with == ("b",) and planned.burn_until is None


def test_the_reach_is_cut_to_the_data():
    around = reach(T, (T - 2 * H, T + 30 * H))
    assert around == TimeWindow(T - 2 * H, T.replace(second=0) + M + 24 * H)
    assert comparison_windows(T, (T - 2 * H, T + 30 * H)) is not None
    assert reach(T, (None, None)) is None
