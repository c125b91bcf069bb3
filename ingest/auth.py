"""Bearer tokens and their roles: who may write which services, and who may read.

The token file (TOML) holds only SHA-256 hashes, never tokens::

    [[token]]
    name = "checkout-team"
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    services = ["checkout", "payments"]     # ["*"]: any service

    [[token]]
    name = "grafana"
    role = "read"                           # the read API and the dashboards
    sha256 = "..."

A token's ``role`` is one of :data:`ROLES`:

- ``ingest`` (the default, so token files written before roles keep working): writes the
  ``service.name`` values in ``services``; cannot read.
- ``read``: reads the API and the dashboards; cannot write (its exports are refused, 403).
- ``admin``: reads, writes the services in ``services`` (default ``["*"]``), and will be the
  role of the administrative endpoints.

A request without a known token is refused (401 / UNAUTHENTICATED). A record whose resource
names a service its token may not write is rejected and quarantined with the reason; the rest
of the request is stored (the partial success says which records were refused and why).
`flaglens auth token` makes a token and the entry to paste.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from ingest.errors import PermissionDenied, Unauthenticated

ANY_SERVICE = "*"
Role = Literal["ingest", "read", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_WRITERS: frozenset[Role] = frozenset({"ingest", "admin"})
_READERS: frozenset[Role] = frozenset({"read", "admin"})


class TokenFileError(ValueError):
    """The token file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What one token may do."""

    name: str
    services: frozenset[str]
    role: Role = "ingest"

    @property
    def may_read(self) -> bool:
        return self.role in _READERS

    @property
    def may_write(self) -> bool:
        return self.role in _WRITERS

    def allows(self, service: object) -> bool:
        """Whether a record naming ``service`` may be written: any attribute value type can
        arrive here (a list or a map is not hashable), only a string names a service."""
        if ANY_SERVICE in self.services:
            return True
        return isinstance(service, str) and service in self.services


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def _grant(entry: object, label: str) -> tuple[str, Grant]:
    if not isinstance(entry, dict):
        raise TokenFileError(f"{label}: must be a table with name, sha256 and services or role")
    name, digest = entry.get("name"), entry.get("sha256")
    role, services = entry.get("role", "ingest"), entry.get("services")
    if not isinstance(name, str) or not name:
        raise TokenFileError(f"{label}: name must be a non-empty string")
    if not isinstance(digest, str) or len(digest) != 64:
        raise TokenFileError(f"{label} ({name}): sha256 must be 64 hex characters")
    if role not in ROLES:
        raise TokenFileError(
            f"{label} ({name}): role must be one of {', '.join(ROLES)}, got {role!r}"
        )
    if role == "read":
        if services is not None:
            raise TokenFileError(
                f"{label} ({name}): a read token writes no services; remove services, "
                'or make it role = "admin"'
            )
        services = []
    elif role == "admin" and services is None:
        services = [ANY_SERVICE]
    elif (
        not isinstance(services, list)
        or not services
        or not all(isinstance(s, str) and s for s in services)
    ):
        raise TokenFileError(f"{label} ({name}): services must be a non-empty list")
    return digest.lower(), Grant(name, frozenset(services), role)


class TokenRing:
    """The hashed tokens of a token file."""

    def __init__(self, grants: dict[str, Grant]) -> None:
        self._grants = grants  # sha256 hex → grant

    @classmethod
    def load(cls, path: str | Path) -> TokenRing:
        where = Path(path)
        try:
            document = tomllib.loads(where.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise TokenFileError(f"token file {where}: {exc}") from exc
        entries = document.get("token", [])
        if not isinstance(entries, list):
            raise TokenFileError(f"token file {where}: write each token as a [[token]] table")
        grants = dict(
            _grant(entry, f"{where} [[token]] #{i + 1}") for i, entry in enumerate(entries)
        )
        if not grants:
            raise TokenFileError(f"token file {where} has no [[token]] entries")
        return cls(grants)

    def authenticate(self, authorization: str | None) -> Grant:
        """The grant of an ``Authorization: Bearer <token>`` value; raises Unauthenticated."""
        if not authorization:
            raise Unauthenticated("no bearer token")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header is not 'Bearer <token>'")
        return self.grant_of(token.strip())

    def grant_of(self, token: str) -> Grant:
        """The grant of a token as sent; raises Unauthenticated when no entry has its hash."""
        digest = token_hash(token)
        for known, grant in self._grants.items():
            if hmac.compare_digest(known, digest):
                return grant
        raise Unauthenticated("unknown bearer token")

    def writer(self, authorization: str | None) -> Grant:
        """The grant of a token that may write; raises Unauthenticated, or PermissionDenied
        for a read token."""
        grant = self.authenticate(authorization)
        if not grant.may_write:
            raise PermissionDenied(
                f"token {grant.name!r} has role {grant.role!r}, which may not write; exporters "
                "need an ingest token (`flaglens auth token --role ingest --services ...`)"
            )
        return grant
