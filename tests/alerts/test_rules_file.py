"""The alert rules file is read through a pydantic model: each problem names the file, the rule,
the field, the value and what is allowed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.rules import load_alert_config
from analytics.errors import ConfigError

RULE = '[[rule]]\nname = "Drift"\nkind = "drift"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rule]]\nname = "X"\nkind = "nope"\n',
         r"\[\[rule\]\] #2 \(X\) kind: Input should be 'contract_violations', "
         r"'unauthorized_mutation', 'drift' or 'budget_burn' \(got 'nope'\)"),
        ('[[rule]]\nname = "X"\nkind = "contract_violations"\n',
         r"#2 \(X\): a contract_violations rule needs a threshold \(count\) or a rate"),
        ('[[rule]]\nname = "X"\nkind = "drift"\nfor = "soon"\n',
         r"#2 \(X\) for: duration 'soon' is not of the form"),
        ('[[rule]]\nname = "X"\nkind = "contract_violations"\nrate = -0.5\n',
         r"#2 \(X\) rate: Input should be greater than or equal to 0 \(got -0.5\)"),
        ('[[rule]]\nname = "X"\nkind = "drift"\nlabels = { team = 7 }\n',
         r"#2 \(X\) labels.team: Input should be a valid string \(got 7\)"),
        ('[[rule]]\nname = "X"\nkind = "drift"\nwindoww = "1h"\n',
         r"#2 \(X\) windoww: unknown field; expected one of: name, kind, window, threshold"),
        ('[receiver]\nurl = "ftp://alerts"\n', r"\[receiver\] url: must be an http\(s\) URL"),
        ('[receiver]\ngroupby = ["service"]\n',
         r"\[receiver\] groupby: unknown field; expected one of: url, group_by, repeat_interval"),
        (RULE, "rule names must be unique; given more than once: Drift"),
    ],
    ids=["unknown kind", "no condition", "bad duration", "negative rate", "label not a string",
         "misspelt field", "receiver not http", "misspelt receiver field", "same name twice"],
)  # fmt: skip
def test_rules_file_problems_name_the_rule_and_field(tmp_path, text, message):
    path = tmp_path / "alerts.toml"
    path.write_text(RULE + text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_alert_config(path)
    assert str(caught.value).startswith(str(path))


def test_rules_file_values_reach_the_rules(tmp_path):
    """Durations, thresholds and the webhook override come through as typed values."""
    path = tmp_path / "alerts.toml"
    path.write_text(
        '[receiver]\nurl = "http://file"\nrepeat_interval = "1h"\n'
        '[[rule]]\nname = "V"\nkind = "contract_violations"\nthreshold = 3\nfor = "5m"\n'
    )
    config = load_alert_config(path, webhook="http://flag")
    assert config.receiver.url == "http://flag"
    assert config.receiver.repeat_interval == timedelta(hours=1)
    (rule,) = config.rules
    assert (rule.threshold, rule.for_, rule.window) == (
        3,
        timedelta(minutes=5),
        timedelta(minutes=10),
    )
