"""The key file is read through a pydantic model: each problem names the file, the key entry
and the field; fields other tools may add beside the two flaglens reads are left alone."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.signing import KeyFileError, KeyRing, public_key_text, sign

PUBLIC = public_key_text(Ed25519PrivateKey.from_private_bytes(bytes(32)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[keys.cp-1]\npublic_key = "abc"\nenvironments = ["prod"]\n',
         r"\[keys.cp-1\] public_key: not a base64 Ed25519 public key"),
        (f'[keys.cp-1]\npublic_key = "{PUBLIC[:-4]}"\nenvironments = ["prod"]\n',
         r"\[keys.cp-1\] public_key: not a base64 Ed25519 public key"),
        (f'[keys.cp-1]\npublic_key = "{PUBLIC}"\n', r"\[keys.cp-1\] environments: missing"),
        (f'[keys.cp-1]\npublic_key = "{PUBLIC}"\nenvironments = "prod"\n',
         r"\[keys.cp-1\] environments: Input should be a valid list \(got 'prod'\)"),
        ('[keys.cp-1]\npublic_key = 5\nenvironments = ["prod"]\n',
         r"\[keys.cp-1\] public_key: must be a string"),
        ("[keys]\ncp-1 = 5\n", r"\[keys.cp-1\]: must be a table with public_key and environments"),
        ("[keys\n", "Expected"),
    ],
    ids=["not base64", "wrong length", "no environments", "environments not a list",
         "key not a string", "entry not a table", "not TOML"],
)  # fmt: skip
def test_key_file_problems_name_the_entry_and_field(tmp_path, text, message):
    path = tmp_path / "keys.toml"
    path.write_text(text)
    with pytest.raises(KeyFileError, match=message) as caught:
        KeyRing.load(path)
    assert str(caught.value).startswith(str(path))


def test_key_file_keys_verify_and_extra_fields_are_left_alone(tmp_path):
    """A key entry with a field flaglens does not read still loads, and its key verifies."""
    private = Ed25519PrivateKey.from_private_bytes(bytes(32))
    path = tmp_path / "keys.toml"
    path.write_text(
        f'[keys.cp-1]\npublic_key = "{PUBLIC}"\nenvironments = ["prod"]\nowner = "platform"\n'
    )
    ring = KeyRing.load(path)
    change = {"policy.change.key_id": "cp-1", "deployment.environment.name": "prod"}
    change["policy.change.signature"] = sign(change, private)
    assert ring.verify(change).value == "valid"
    assert ring.keys["cp-1"].environments == frozenset({"prod"})
