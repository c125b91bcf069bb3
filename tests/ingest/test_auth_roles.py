"""Roles in the token file: ingest tokens write (old files included), read tokens cannot."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from flaglens.cli.main import main
from ingest.auth import TokenFileError, TokenRing, token_hash
from ingest.errors import PermissionDenied
from ingest.http_server import create_app
from ingest.service import IngestService
from ingest.settings import IngestSettings
from tests.factories import decision_attributes, otlp_json_logs


def _ring(tmp_path, text: str) -> TokenRing:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    return TokenRing.load(path)


def _entry(name: str, token: str, extra: str) -> str:
    return f'[[token]]\nname = "{name}"\nsha256 = "{token_hash(token)}"\n{extra}\n'


def test_a_token_without_a_role_is_an_ingest_token(tmp_path):
    """Token files written before roles keep working: the same grants as before."""
    ring = _ring(tmp_path, _entry("checkout", "t1", 'services = ["checkout"]'))
    grant = ring.writer("Bearer t1")
    assert (grant.role, grant.may_write, grant.may_read) == ("ingest", True, False)
    assert grant.allows("checkout") and not grant.allows("payments")


def test_read_and_admin_roles(tmp_path):
    ring = _ring(
        tmp_path,
        _entry("grafana", "r", 'role = "read"') + _entry("ops", "a", 'role = "admin"'),
    )
    assert ring.grant_of("r").may_read
    with pytest.raises(PermissionDenied, match="token 'grafana' has role 'read'"):
        ring.writer("Bearer r")
    admin = ring.writer("Bearer a")
    assert admin.may_read and admin.allows("anything")


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ('role = "root"', "role must be one of ingest, read, admin, got 'root'"),
        ('role = "read"\nservices = ["x"]', "a read token writes no services"),
        ("", "services must be a non-empty list"),
    ],
    ids=["unknown role", "read token with services", "ingest token without services"],
)
def test_a_wrong_entry_names_the_entry_and_the_fix(tmp_path, extra, fragment):
    with pytest.raises(TokenFileError, match=fragment):
        _ring(tmp_path, _entry("x", "t", extra))


def test_a_read_token_cannot_export(tmp_path):
    """OTLP/HTTP answers 403 to a read token; an ingest token is served."""
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(
        _entry("grafana", "reader", 'role = "read"')
        + _entry("checkout", "writer", 'services = ["checkout"]')
    )
    service = IngestService(
        IngestSettings(db=tmp_path / "f.duckdb", auth_file=tokens, decode_workers=0)
    )
    service.start()
    body = otlp_json_logs([decision_attributes()])

    async def post(token: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://otlp") as client:
            return await client.post(
                "/v1/logs", json=body, headers={"authorization": f"Bearer {token}"}
            )

    try:
        refused = asyncio.run(post("reader"))
        assert refused.status_code == 403
        assert "has role 'read', which may not write" in refused.json()["message"]
        assert asyncio.run(post("writer")).status_code == 200
    finally:
        service.close()


def test_auth_token_prints_an_entry_for_each_role(capsys, tmp_path):
    assert main(["auth", "token", "--name", "grafana", "--role", "read"]) == 0
    printed = capsys.readouterr().out
    entry = printed[printed.index("[[token]]") :]
    token = printed.splitlines()[1].removeprefix("# ")
    (tmp_path / "t.toml").write_text(entry)
    grant = TokenRing.load(tmp_path / "t.toml").grant_of(token)
    assert (grant.name, grant.role) == ("grafana", "read")
    with pytest.raises(SystemExit, match="a read token writes no services"):
        main(["auth", "token", "--name", "g", "--role", "read", "--services", "x"])
