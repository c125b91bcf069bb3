"""The read listener's roles: a read token reads the API and the dashboards; an ingest token,
a missing or an unknown one does not."""

from __future__ import annotations

import base64

import pytest

from api import create_api, create_read_app
from flaglens.read_listener import read_access
from ingest.auth import TokenRing, token_hash
from tests.api.conftest import WEEK, AsgiClient

READ, INGEST, ADMIN = "reader-secret", "exporter-secret", "admin-secret"


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokens") / "tokens.toml"
    path.write_text(
        f'[[token]]\nname = "grafana"\nrole = "read"\nsha256 = "{token_hash(READ)}"\n\n'
        f'[[token]]\nname = "checkout"\nsha256 = "{token_hash(INGEST)}"\n'
        'services = ["checkout"]\n\n'
        f'[[token]]\nname = "ops"\nrole = "admin"\nsha256 = "{token_hash(ADMIN)}"\n'
    )
    return TokenRing.load(path)


def _dashboards(environ, start_response):
    start_response("200 OK", [("content-type", "text/html")])
    return [b"<html>dashboards</html>"]


@pytest.fixture(scope="module")
def listener(week_session, ring):
    return create_read_app(create_api(week_session), _dashboards, access=read_access(ring))


def _basic(password: str, user: str = "anyone") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {READ}", _basic(READ), _basic("", user=READ), f"Bearer {ADMIN}"],
    ids=["bearer", "basic password", "basic user (curl -u TOKEN:)", "admin"],
)
def test_a_token_that_may_read_reads_both(listener, authorization):
    client = AsgiClient(listener, {"authorization": authorization})
    assert client.get("/api/v1/analyses/drift", params=WEEK).status_code == 200
    page = client.get("/changes")
    assert page.status_code == 200 and b"dashboards" in page.content


@pytest.mark.parametrize(
    ("authorization", "status", "fragment"),
    [
        (None, 401, "no token"),
        ("Bearer not-a-token", 401, "unknown token"),
        ("Basic !!!", 401, "no token"),
        (f"Bearer {INGEST}", 403, "token 'checkout' has role 'ingest', which may not read"),
    ],
    ids=["none", "unknown", "garbled basic", "ingest token"],
)  # fmt: skip
def test_other_requests_are_refused_as_json_on_the_api(listener, authorization, status, fragment):
    headers = {"authorization": authorization} if authorization else {}
    response = AsgiClient(listener, headers).get("/api/v1/analyses/drift", params=WEEK)
    assert response.status_code == status
    assert response.json()["error"] == ("unauthenticated" if status == 401 else "forbidden")
    assert fragment in response.json()["detail"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith('Bearer realm="flaglens"')


def test_the_dashboards_ask_a_browser_for_the_token(listener):
    """401 with a basic-auth challenge: the browser prompts; the token is the password."""
    response = AsgiClient(listener).get("/")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="flaglens", charset="UTF-8"'
    assert b"read token as the password" in response.content
    refused = AsgiClient(listener, {"authorization": _basic(INGEST)}).get("/")
    assert refused.status_code == 403 and b"may not read" in refused.content


def test_without_a_token_file_everything_is_open(week_session):
    listener = create_read_app(create_api(week_session), _dashboards)
    assert AsgiClient(listener).get("/api/v1/exports").status_code == 200
    assert AsgiClient(listener).get("/").status_code == 200
