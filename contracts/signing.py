"""Environment-bound signing of policy changes (the format is a promise; README § Signing).

A control plane signs each change with Ed25519 over the *signing payload*: the change's
attributes ``policy.change.*`` (except ``policy.change.signature``), ``feature_flag.key``,
``feature_flag.version``, ``policy.module`` and ``deployment.environment.name``, serialised as
JSON with keys sorted, no insignificant whitespace and non-ASCII kept as UTF-8, then encoded as
UTF-8. The signature goes, base64 (standard alphabet, padded), into ``policy.change.signature``.

A key file (TOML) maps each ``policy.change.key_id`` to a public key and the environments it may
sign for::

    [keys.cp-prod-2026]
    public_key = "<base64 of the 32-byte raw Ed25519 public key>"
    environments = ["prod"]
"""

from __future__ import annotations

import base64
import binascii
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from contracts.errors import ContractError

SIGNATURE = "policy.change.signature"
KEY_ID = "policy.change.key_id"
_SIGNED_FIELDS = (
    "feature_flag.key",
    "feature_flag.version",
    "policy.module",
    "deployment.environment.name",
)


class KeyFileError(ContractError):
    """The key file cannot be used; the message names the file and the entry."""


def _public_key(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("must be a string: the base64 of the raw 32-byte Ed25519 public key")
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(
            f"not a base64 Ed25519 public key (32 bytes, base64 of the raw key): {exc}"
        ) from None


class _KeyEntry(BaseModel):
    """One ``[keys.<key id>]`` table; fields beside these are left alone (other tools may
    write them)."""

    model_config = ConfigDict(strict=True, arbitrary_types_allowed=True)

    public_key: Annotated[Ed25519PublicKey, BeforeValidator(_public_key)]
    environments: list[str]


class _KeyFile(BaseModel):
    model_config = ConfigDict(strict=True)

    keys: dict[str, _KeyEntry] = {}


def _problems(where: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = error["loc"]
        in_entry = len(loc) >= 2 and loc[0] == "keys"
        table = f"[keys.{loc[1]}]" if in_entry else ".".join(str(p) for p in loc)
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[2:])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "missing (required)"
        elif error["type"] == "model_type":
            message = "must be a table with public_key and environments"
        if error["type"] != "missing" and not isinstance(error.get("input"), dict):
            message += f" (got {error.get('input')!r})"
        lines.append(
            " ".join(p for p in (f"{where}", table, field.lstrip(".")) if p) + f": {message}"
        )
    return "\n".join(lines)


def signing_payload(change: Mapping[str, Any]) -> bytes:
    """The exact bytes a change's signature covers."""
    signed = {
        name: value
        for name, value in change.items()
        if (name.startswith("policy.change.") and name != SIGNATURE) or name in _SIGNED_FIELDS
    }
    text = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def sign(change: Mapping[str, Any], private_key: Ed25519PrivateKey) -> str:
    """The base64 signature of a change (its own ``policy.change.signature`` is ignored)."""
    return base64.b64encode(private_key.sign(signing_payload(change))).decode()


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    """Base64 of the raw public key, as written in key files."""
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    public_key: Ed25519PublicKey
    environments: frozenset[str]


class SignatureStatus(StrEnum):
    VALID = "valid"
    MISSING = "missing"  # no signature, or no key id
    UNKNOWN_KEY = "unknown_key"  # the key id is not in the key file
    INVALID = "invalid"  # does not verify (tampered, wrong key, not base64)
    WRONG_ENVIRONMENT = "wrong_environment"  # verifies, but the key may not sign for this env


class KeyRing:
    """The public keys of the control planes, each bound to environments."""

    def __init__(self, keys: Mapping[str, SigningKey]) -> None:
        self.keys = dict(keys)

    @classmethod
    def load(cls, path: str | Path) -> KeyRing:
        """Read a key file; raises :class:`KeyFileError` naming the file, the entry, the field
        and what it must be."""
        where = Path(path)
        try:
            document = tomllib.loads(where.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise KeyFileError(f"{where}: {exc}") from exc
        try:
            keys = _KeyFile.model_validate(document).keys
        except ValidationError as exc:
            raise KeyFileError(_problems(where, exc)) from None
        return cls(
            {
                key_id: SigningKey(key_id, entry.public_key, frozenset(entry.environments))
                for key_id, entry in keys.items()
            }
        )

    def verify(self, change: Mapping[str, Any]) -> SignatureStatus:
        """Check one change (its canonical attributes, as stored in ``policy_changes``)."""
        signature = change.get(SIGNATURE)
        key_id = change.get(KEY_ID)
        if not signature or not key_id:
            return SignatureStatus.MISSING
        key = self.keys.get(str(key_id))
        if key is None:
            return SignatureStatus.UNKNOWN_KEY
        try:
            key.public_key.verify(
                base64.b64decode(str(signature), validate=True), signing_payload(change)
            )
        except (InvalidSignature, ValueError, binascii.Error):
            return SignatureStatus.INVALID
        if change.get("deployment.environment.name") not in key.environments:
            return SignatureStatus.WRONG_ENVIRONMENT
        return SignatureStatus.VALID
