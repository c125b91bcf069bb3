"""Values from the data as the surfaces show them: shortened for display, escaped for where
they land.

Any attribute value can be a service, flag or cohort name: 20 KB of astral-plane characters,
or ``<a href="https://evil.example/x">click</a>``. Labels (legend entries, axis categories,
menu entries, table cells) show at most :data:`LABEL_CHARACTERS` characters and the surfaces
put the whole value on hover (a ``title`` attribute, Plotly's hover text up to
:data:`HOVER_CHARACTERS`). Plotly renders its own subset of HTML in every text it draws
(``<a href>``, ``<b>``, ``<br>``...), so text bound for a figure is HTML-escaped; Markdown
renders HTML and its own markup, so text bound for a Markdown table is escaped for both.

Shortening counts code points (Python's ``str``), so a surrogate pair is never split; and a
whole 20 KB value must not reach Dash's dropdown, whose search index holds every substring of
each label (quadratic in its length: a minute of a browser's time for one such name).
"""

from __future__ import annotations

import html
import re

LABEL_CHARACTERS = 60
"""Most characters of a value shown as a label; the rest is on hover."""
HOVER_CHARACTERS = 1000
"""Most characters of a value in a figure's hover text (the full length is said)."""
_ELLIPSIS = "…"
# characters Markdown (CommonMark, GitHub) gives a meaning inside a table cell; an underscore
# between two letters or digits cannot emphasise (snake_case stays as it is)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>&|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")


def shorten(text: str, limit: int = LABEL_CHARACTERS) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(1, limit - 1)] + _ELLIPSIS


def hover(text: str, limit: int = HOVER_CHARACTERS) -> str:
    """``text`` for hover text: whole, or cut at ``limit`` characters saying how long it is."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}{_ELLIPSIS} ({len(text):,} characters)"


def plotly_text(text: object, limit: int | None = LABEL_CHARACTERS) -> str:
    """``text`` as Plotly shows it literally: shortened (unless ``limit`` is None) and with
    Plotly's pseudo-HTML escaped (``<`` → ``&lt;``, which Plotly turns back into a ``<``)."""
    value = str(text)
    if limit is not None:
        value = shorten(value, limit)
    return html.escape(value, quote=False)


def plotly_labels(values: list[str], limit: int = LABEL_CHARACTERS) -> list[str]:
    """Category labels for a Plotly axis: escaped and shortened, and kept distinct where two
    values shorten to the same label (Plotly would merge their bars)."""
    seen: dict[str, int] = {}
    labels = []
    for value in values:
        label = plotly_text(value, limit)
        count = seen.get(label, 0)
        seen[label] = count + 1
        labels.append(label if not count else f"{label} ({count + 1})")
    return labels


def markdown_text(text: object) -> str:
    """``text`` as a Markdown table cell that renders literally: no HTML, no links, no
    emphasis, no cell break."""
    value = _LINE_BREAKS.sub(" ", str(text))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", value)
