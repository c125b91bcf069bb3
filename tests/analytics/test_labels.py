"""Values from the data as labels: shortened by code points, escaped for Plotly and Markdown."""

from __future__ import annotations

import pytest

from analytics.labels import hover, markdown_text, plotly_labels, plotly_text, shorten
from analytics.windows import TimeWindow, parse_duration, parse_instant

ASTRAL = "\U0001d518" * 5000  # 20 KB of UTF-8, 10,000 UTF-16 code units
LINK = '<a href="https://evil.example/x">click</a>'


def test_shorten_counts_code_points_and_never_splits_a_pair():
    """An astral name is cut to the label length in characters, marked with an ellipsis."""
    label = shorten(ASTRAL)
    assert len(label) == 60 and label.endswith("…")
    assert label[:-1] == ASTRAL[:59]
    assert shorten("checkout") == "checkout"


def test_hover_says_how_long_a_cut_value_was():
    assert hover(ASTRAL).endswith("(5,000 characters)")
    assert hover("short") == "short"


def test_plotly_text_escapes_plotly_markup():
    """Plotly renders <a href> and <b> in labels; escaped, they show as text."""
    assert plotly_text(LINK, None) == '&lt;a href="https://evil.example/x"&gt;click&lt;/a&gt;'
    assert "<" not in plotly_text(LINK)


def test_plotly_labels_stay_distinct_when_shortened():
    """Two long names with the same first 59 characters are two bars, not one."""
    a, b = "x" * 70 + "a", "x" * 70 + "b"
    labels = plotly_labels([a, b, "checkout"])
    assert len(set(labels)) == 3 and labels[2] == "checkout"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<script>alert(1)</script>", "\\<script\\>alert(1)\\</script\\>"),
        (LINK, '\\<a href="https://evil.example/x"\\>click\\</a\\>'),
        ("[x](https://evil.example)", "\\[x\\](https://evil.example)"),
        ("a|b", "a\\|b"), ("*bold* _em_ `code`", "\\*bold\\* \\_em\\_ \\`code\\`"),
        ("actor_not_allowed", "actor_not_allowed"), ("two\nlines", "two lines"),
        ("&amp;", "\\&amp;"),
    ],
)  # fmt: skip
def test_markdown_text_renders_literally(text, expected):
    assert markdown_text(text) == expected


@pytest.mark.parametrize(
    "text", ["now-999999d", "9999-12-31T23:59:59", "0001-01-01", "now-" + "9" * 5000 + "d"]
)
def test_instants_out_of_range_are_a_clear_error(text):
    """Times a window cannot span are refused with the range, never an OverflowError."""
    from analytics.errors import InvalidWindow

    with pytest.raises(InvalidWindow, match=r"outside the range|at most 12 digits"):
        TimeWindow(parse_instant(text), parse_instant("now"))


def test_durations_past_any_window_are_a_clear_error():
    from analytics.errors import InvalidWindow

    with pytest.raises(InvalidWindow, match="longer than any window"):
        parse_duration("999999999999w")
