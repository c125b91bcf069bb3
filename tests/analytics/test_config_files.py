"""The SLO file is read through a pydantic model: each problem names the file, the entry, the
field, the value and what is allowed."""

from __future__ import annotations

import pytest

from analytics.errors import ConfigError
from analytics.slo import load_slos

GOOD = '[[slo]]\nname = "ok"\nservice = "api"\nsli = "availability"\nobjective = 0.999\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[slo]]\nname = "lat"\nservice = "api"\nsli = "latency"\nobjective = 0.99\n'
         "threshold_ms = -5\n",
         r"\[\[slo\]\] #2 \(lat\) threshold_ms: Input should be greater than 0 \(got -5\)"),
        ('[[slo]]\nname = "a"\nservice = "api"\nsli = "availability"\nobjective = "high"\n',
         r"#2 \(a\) objective: Input should be a valid number \(got 'high'\)"),
        ('[[slo]]\nname = "a"\nservice = "api"\nsli = "availability"\nobjective = 0.99\n'
         'windw = "7d"\n',
         r"#2 \(a\) windw: unknown field; expected one of: name, service, environment, sli, "),
        ('[[slo]]\nservice = "api"\nsli = "availability"\nobjective = 0.99\n',
         r"\[\[slo\]\] #2 name: missing \(required\)"),
        ('[[slo]]\nname = "ok"\nservice = "api"\nsli = "availability"\nobjective = 0.99\n',
         "duplicate SLO name"),
        ("[[slos]]\nname = 1\n", r"slos: unknown table; expected one of: slo"),
    ],
    ids=["bad value", "wrong type", "misspelt field", "missing field", "same name twice",
         "misspelt table"],
)  # fmt: skip
def test_slo_file_problems_name_the_entry_and_field(tmp_path, text, message):
    """The second [[slo]] is wrong: the message points at it and says what is allowed."""
    path = tmp_path / "slos.toml"
    path.write_text(GOOD + text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_slos(path)
    assert str(caught.value).startswith(str(path))


def test_slo_file_without_objectives_is_refused(tmp_path):
    """A file with no [[slo]] table says so."""
    path = tmp_path / "slos.toml"
    path.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"no \[\[slo\]\] tables"):
        load_slos(path)


def test_every_problem_of_an_entry_is_listed(tmp_path):
    """Two bad fields in one entry: two lines, each naming its field."""
    path = tmp_path / "slos.toml"
    path.write_text('[[slo]]\nname = "x"\nservice = "api"\nsli = "speed"\nobjective = 2.0\n')
    with pytest.raises(ConfigError) as caught:
        load_slos(path)
    assert str(caught.value).splitlines() == [
        f"{path} [[slo]] #1 (x) sli: Input should be 'availability' or 'latency' (got 'speed')",
        f"{path} [[slo]] #1 (x) objective: must be between 0 and 1 (exclusive) (got 2.0)",
    ]
