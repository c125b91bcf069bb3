"""Every setting of `flaglens serve` is declared once: its flag, its variable and its row of
docs/configuration.md all come from the field, and they agree."""

from __future__ import annotations

import argparse
import typing
from datetime import timedelta
from pathlib import Path
from typing import Literal

import pytest
from pydantic import ValidationError

from flaglens.cli.demo import serve_command
from flaglens.cli.flags import settings_from_args
from flaglens.cli.main import build_parser
from flaglens.settings import ServeSettings, _base_type, setting_specs
from flaglens.settings_docs import REFERENCE, REGENERATE, render
from ingest.settings import Settings, setting, shown

SPECS = setting_specs(ServeSettings)


def _serve_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return verbs.choices["serve"]


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def _undocumented(model: type[Settings]) -> list[str]:
    """The fields that break the rules of declaration, with why."""
    problems = []
    for name, field in model.model_fields.items():
        how = shown(field)
        if how is None:
            problems.append(f"{name}: not declared with ingest.settings.setting()")
        if not (field.description or "").strip().endswith("."):
            problems.append(f"{name}: no description (a sentence or more)")
        if field.default_factory is not None and (how is None or how.default is None):
            problems.append(f"{name}: a computed default needs shown_default (the docs' text)")
        if _base_type(field.annotation) is bool and field.default is not False:
            problems.append(f"{name}: a switch must default to false")
    return problems


def test_configuration_reference_is_generated():
    """docs/configuration.md is exactly what the generator writes from the settings model."""
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        f"docs/configuration.md is out of date with the settings model: run `{REGENERATE}`"
    )


def test_every_setting_is_declared_with_a_description():
    """Each field has a description, a group, and a documented default."""
    assert _undocumented(ServeSettings) == []


def test_an_undescribed_setting_is_caught():
    """The declaration check fails for a field without a description or shown default."""

    class Careless(Settings):
        plain: int = 3
        computed: int = setting(default_factory=lambda: 4, description="Four.", group="x")

    assert _undocumented(Careless) == [
        "plain: not declared with ingest.settings.setting()",
        "plain: no description (a sentence or more)",
        "computed: a computed default needs shown_default (the docs' text)",
    ]


def test_serve_has_exactly_one_flag_per_setting():
    """No flag of `serve` is written by hand: its options are the fields' flags, each with the
    field as its destination."""
    options = {
        action.option_strings[0]: action.dest
        for action in _serve_parser()._actions
        if action.option_strings and action.dest != "help"
    }
    assert options == {spec.flag: spec.name for spec in SPECS}


def test_promised_flags_and_variables_keep_their_names():
    """The flags of earlier releases keep their spelling; the variables theirs."""
    flags = {spec.flag for spec in SPECS}
    assert {"--no-grpc", "--no-dashboards", "--no-alerts", "--insecure-no-auth",
            "--dashboard-port", "--slos", "--governance", "--keys", "--alert-rules",
            "--alert-webhook", "--alert-interval", "--http-port", "--grpc-port",
            "--max-decompressed-bytes", "--writer-max-pending-rows"} <= flags  # fmt: skip
    variables = {v for spec in SPECS for v in spec.variables}
    assert {"FLAGLENS_DB", "FLAGLENS_WRITER_COMMIT_DELAY", "FLAGLENS_WRITER_MAX_GROUP_WAIT",
            "FLAGLENS_SELF_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL"} <= variables  # fmt: skip


def _sample(name: str) -> str:
    """A valid value for the field, different from its default, as one would type it."""
    field = ServeSettings.model_fields[name]
    default = field.get_default(call_default_factory=True)
    base = _base_type(field.annotation)
    if field.examples:
        return str(field.examples[0])
    if typing.get_origin(base) is Literal:
        return next(str(c) for c in typing.get_args(base) if c != default)
    if base is int:
        return str(default - 1 if name.endswith("port") or default == 64 else (default or 0) + 1)
    if base is float:
        return str(default + 0.5)
    if base is timedelta:
        return "5m"
    if base is Path:
        return "some/where.toml"
    return "example.test"


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_flag_and_variable_set_the_same_value(monkeypatch, spec):
    """Given as its flag or as its variable, a setting reaches the model as the same value,
    and not as the default."""
    argv = [spec.flag] if spec.metavar is None else [spec.flag, _sample(spec.name)]
    from_flag = getattr(settings_from_args(ServeSettings, _parse(*argv)), spec.name)
    monkeypatch.setenv(spec.variables[0], "true" if spec.metavar is None else argv[1])
    from_variable = getattr(settings_from_args(ServeSettings, _parse()), spec.name)
    assert from_flag == from_variable
    assert from_flag != ServeSettings.model_fields[spec.name].get_default(call_default_factory=True)


def test_flag_wins_over_variable_wins_over_default(monkeypatch):
    """Precedence: flag, then FLAGLENS_* variable, then the default."""
    assert settings_from_args(ServeSettings, _parse()).http_port == 4318
    monkeypatch.setenv("FLAGLENS_HTTP_PORT", "5000")
    assert settings_from_args(ServeSettings, _parse()).http_port == 5000
    assert settings_from_args(ServeSettings, _parse("--http-port", "6000")).http_port == 6000


def test_otel_variables_are_the_fallback_for_self_metrics(monkeypatch):
    """OTEL_EXPORTER_OTLP_* apply when flaglens' own variable and flag are not set."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    settings = settings_from_args(ServeSettings, _parse())
    assert (settings.self_otlp_endpoint, settings.self_otlp_protocol) == (
        "http://collector:4318",
        "grpc",
    )
    monkeypatch.setenv("FLAGLENS_SELF_OTLP_ENDPOINT", "http://mine:4318")
    assert settings_from_args(ServeSettings, _parse()).self_otlp_endpoint == "http://mine:4318"
    flagged = _parse("--self-otlp-endpoint", "http://flag:4318")
    assert settings_from_args(ServeSettings, flagged).self_otlp_endpoint == "http://flag:4318"


def test_a_switch_variable_must_be_a_boolean(monkeypatch):
    """FLAGLENS_NO_GRPC=maybe is refused, like a bad number."""
    monkeypatch.setenv("FLAGLENS_NO_GRPC", "maybe")
    with pytest.raises(ValidationError, match="no_grpc"):
        settings_from_args(ServeSettings, _parse())


def test_analyze_reads_the_analytics_files_from_their_variables(monkeypatch, tmp_path):
    """`analyze` takes --keys / FLAGLENS_KEYS as `serve` does."""
    from flaglens.cli.analyze import analytics_config

    parse = build_parser().parse_args
    monkeypatch.setenv("FLAGLENS_KEYS", str(tmp_path / "env.toml"))
    assert analytics_config(parse(["analyze", "budgets"]), None).key_file == tmp_path / "env.toml"
    flagged = parse(["analyze", "budgets", "--keys", str(tmp_path / "flag.toml")])
    assert analytics_config(flagged, None).key_file == tmp_path / "flag.toml"


def test_demo_passes_the_ports_it_is_given_to_the_server(tmp_path):
    """`demo --http-port 0 --dashboard-port 0` runs `serve` with those ports; a port not given
    is left to the server's variable or default."""
    args = build_parser().parse_args(["demo", "--http-port", "0", "--dashboard-port", "0"])
    command = serve_command(args, tmp_path / "f.duckdb", tmp_path / "keys.toml")
    serve_args = _parse(*command[command.index("serve") + 1 :])
    assert (serve_args.http_port, serve_args.dashboard_port, serve_args.grpc_port) == (
        "0",
        "0",
        None,
    )
    assert serve_args.keys == str(tmp_path / "keys.toml")
