"""Bearer tokens, each bound to the ``service.name`` values it may write.

The token file (TOML) holds only SHA-256 hashes, never tokens::

    [[token]]
    name = "checkout-team"
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    services = ["checkout", "payments"]     # ["*"]: any service

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

from ingest.errors import Unauthenticated

ANY_SERVICE = "*"


class TokenFileError(ValueError):
    """The token file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What one token may do."""

    name: str
    services: frozenset[str]

    def allows(self, service: object) -> bool:
        return ANY_SERVICE in self.services or service in self.services


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


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
        grants: dict[str, Grant] = {}
        for i, entry in enumerate(document.get("token", [])):
            label = f"{where} [[token]] #{i + 1}"
            name, digest, services = entry.get("name"), entry.get("sha256"), entry.get("services")
            if not isinstance(name, str) or not name:
                raise TokenFileError(f"{label}: name must be a non-empty string")
            if not isinstance(digest, str) or len(digest) != 64:
                raise TokenFileError(f"{label} ({name}): sha256 must be 64 hex characters")
            if (
                not isinstance(services, list)
                or not services
                or not all(isinstance(s, str) and s for s in services)
            ):
                raise TokenFileError(f"{label} ({name}): services must be a non-empty list")
            grants[digest.lower()] = Grant(name, frozenset(services))
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
        digest = token_hash(token.strip())
        for known, grant in self._grants.items():
            if hmac.compare_digest(known, digest):
                return grant
        raise Unauthenticated("unknown bearer token")
