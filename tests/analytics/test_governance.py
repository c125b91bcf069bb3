"""Governance on hand-built ledgers: each unauthorized kind found with its reason, drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from analytics.errors import ConfigError
from analytics.governance import drift, load_rules, review_changes, unauthorized_mutations
from analytics.windows import TimeWindow
from contracts.signing import KeyRing, SignatureStatus, public_key_text, sign, signing_payload
from tests.analytics.helpers import add_change, add_decisions

T0 = datetime(2026, 11, 16, tzinfo=UTC)
WINDOW = TimeWindow(T0, T0 + timedelta(days=7))


@pytest.fixture
def keys(tmp_path):
    prod, staging = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    path = tmp_path / "keys.toml"
    path.write_text(
        f'[keys.prod-1]\npublic_key = "{public_key_text(prod)}"\nenvironments = ["prod"]\n'
        f'[keys.staging-1]\npublic_key = "{public_key_text(staging)}"\n'
        'environments = ["staging"]\n'
    )
    return {"prod-1": prod, "staging-1": staging, "ring": KeyRing.load(path)}


def _change(keys, n, *, actor="alice@example.com", module="release", env="prod",
            approvers=("dana@example.com",), key="prod-1", version=None, tamper=False):  # fmt: skip
    attributes = {
        "policy.change.id": f"c{n}", "feature_flag.key": f"flag-{n}",
        "feature_flag.version": version or f"v{n}", "policy.module": module,
        "policy.change.actor": actor, "deployment.environment.name": env,
        "policy.change.approvers": list(approvers),
    }  # fmt: skip
    if key:
        attributes["policy.change.key_id"] = key
        attributes["policy.change.signature"] = sign(attributes, keys[key])
    if tamper:
        attributes["feature_flag.version"] += "-x"
    return attributes


def test_signing_payload_is_sorted_compact_utf8():
    change = {"policy.change.id": "c1", "feature_flag.key": "größe", "policy.module": "release",
              "policy.change.signature": "ignored", "service.name": "not signed"}  # fmt: skip
    assert (
        signing_payload(change)
        == (
            '{"feature_flag.key":"größe","policy.change.id":"c1","policy.module":"release"}'
        ).encode()
    )


def test_each_kind_of_unauthorized_change(tmp_path, keys, store_maker):
    store = store_maker.new(tmp_path)
    cases = {
        "c1": _change(keys, 1),  # fine
        "c2": _change(keys, 2, actor="carol@example.com"),  # carol: staging only
        "c3": _change(
            keys, 3, module="privacy", actor="bob@example.com", approvers=("dana@example.com",)
        ),  # privacy in prod needs 2 approvals
        "c4": _change(keys, 4, key=None),
        "c5": _change(keys, 5, tamper=True),
        "c6": _change(keys, 6, key="staging-1"),
        "c7": _change(keys, 7, approvers=("alice@example.com",)),  # self-approval does not count
    }
    for i, attributes in enumerate(cases.values()):
        add_change(store, attributes, T0 + timedelta(hours=i + 1))
    found = unauthorized_mutations(store.cursor(), WINDOW, load_rules(), keys["ring"])
    assert {m.change_id: m.reasons for m in found} == {
        "c2": ("actor_not_allowed",),
        "c3": ("missing_approvals",),
        "c4": ("signature_missing",),
        "c5": ("signature_invalid",),
        "c6": ("signature_wrong_environment",),
        "c7": ("missing_approvals",),
    }
    reviewed = {r.change_id: r for r in review_changes(store.cursor(), WINDOW, load_rules(),
                                                       keys["ring"])}  # fmt: skip
    assert reviewed["c1"].authorized and reviewed["c1"].signature is SignatureStatus.VALID
    assert reviewed["c6"].signature is SignatureStatus.WRONG_ENVIRONMENT


def test_unknown_key_is_reported(tmp_path, keys, store_maker):
    store = store_maker.new(tmp_path)
    add_change(store, _change(keys, 1), T0 + timedelta(hours=1))
    found = unauthorized_mutations(store.cursor(), WINDOW, load_rules(), KeyRing({}))
    assert found[0].reasons == ("signature_unknown_key",)


def test_drift_is_a_version_no_authorized_change_produced(tmp_path, keys, store_maker):
    store = store_maker.new(tmp_path)
    add_change(store, _change(keys, 1, version="v1"), T0)  # flag-1 v1, authorized
    add_change(store, _change(keys, 1, version="v2", key=None), T0 + timedelta(hours=1))
    hour = timedelta(hours=1)
    add_decisions(store, flag="flag-1", version="v1", times=[T0 + hour * 2] * 5)
    add_decisions(store, flag="flag-1", version="v2", times=[T0 + hour * 3, T0 + hour * 4])
    add_decisions(store, flag="flag-1", version="v9", service="web",
                  times=[T0 + hour * 5, T0 + hour * 6, T0 + hour * 7])  # fmt: skip
    add_decisions(store, flag="flag-1", version="v1", environment="staging", times=[T0 + hour])
    found = drift(store.cursor(), WINDOW, load_rules(), keys["ring"])
    summary = [(d.environment, d.version, d.count, d.services, d.produced_by_unauthorized)
               for d in found]  # fmt: skip
    assert summary == [
        ("prod", "v9", 3, ("web",), ()),
        ("prod", "v2", 2, ("api",), ("c1",)),  # produced only by the unsigned change
        ("staging", "v1", 1, ("api",), ()),  # v1 was authorized for prod, not staging
    ]
    assert found[0].first_seen == T0 + hour * 5 and found[0].last_seen == T0 + hour * 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[actors]]\nname = "x"\nmodules = ["nope"]\nenvironments = ["prod"]\n',
            "modules\\[0\\]: Input should be 'release', 'privacy', 'security' or 'cost'",
        ),
        (
            '[[actors]]\nname = "x"\nmodules = "release"\nenvironments = []\n',
            "modules: Input should be a valid list",
        ),
        ("[approvals.release]\nprod = -1\n", "prod: Input should be greater than or equal to 0"),
        ("[[actors]\n", "not valid TOML"),
        ('[[actors]]\nname = "x"\nmodules = []\nenviroments = []\n', "unknown field"),
        ("[approval.release]\nprod = 1\n", "unknown table"),
    ],
)
def test_broken_governance_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "governance.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_rules(path)


def test_discounted_approvals_are_named(tmp_path, keys, store_maker):
    """Self-approval and an approver named twice do not count, and the review says so."""
    store = store_maker.new(tmp_path)
    approvers = ("bob@example.com", "dana@example.com", "dana@example.com")
    add_change(store, _change(keys, 1, module="privacy", actor="bob@example.com",
                              approvers=approvers), T0 + timedelta(hours=1))  # fmt: skip
    (review,) = review_changes(store.cursor(), WINDOW, load_rules(), keys["ring"])
    assert review.approvers == ("dana@example.com",)
    assert [a.as_dict() for a in review.discounted_approvals] == [
        {"approver": "bob@example.com", "reason": "self_approval"},
        {"approver": "dana@example.com", "reason": "duplicate"},
    ]
    assert review.reasons == ("missing_approvals",)
    assert "bob@example.com not counted (self_approval)" in review.details[0]
    assert review.as_dict()["discounted_approvals"][1]["reason"] == "duplicate"


def test_each_drift_says_why_it_is_drift(tmp_path, keys, store_maker):
    """Never recorded, approved only elsewhere, produced only by an unauthorized change, and
    served before the change that approved it."""
    store = store_maker.new(tmp_path)
    hour = timedelta(hours=1)
    add_change(store, _change(keys, 1, version="v1"), T0 + 5 * hour)  # approved at 05:00
    add_change(store, _change(keys, 1, version="v2", key=None), T0 + hour)  # unsigned
    add_change(store, _change(keys, 1, version="v3", env="staging", key="staging-1",
                              approvers=()), T0 + hour)  # fmt: skip
    add_decisions(store, flag="flag-1", version="v1", times=[T0 + 2 * hour, T0 + 3 * hour,
                                                            T0 + 6 * hour])  # fmt: skip
    add_decisions(store, flag="flag-1", version="v2", times=[T0 + 2 * hour])
    add_decisions(store, flag="flag-1", version="v3", times=[T0 + 2 * hour] * 4)
    add_decisions(store, flag="flag-1", version="v9", times=[T0 + 2 * hour] * 5)
    found = {d.version: d for d in drift(store.cursor(), WINDOW, load_rules(), keys["ring"])}
    assert {v: d.reason for v, d in found.items()} == {
        "v1": "served_before_approval",
        "v2": "unauthorized_change",
        "v3": "other_environment",
        "v9": "never_recorded",
    }
    early = found["v1"]  # only the two decisions before 05:00
    assert (early.count, early.first_seen, early.last_seen) == (2, T0 + 2 * hour, T0 + 3 * hour)
    assert early.approved_at == T0 + 5 * hour
    assert found["v3"].approved_in == ("staging",)
    assert found["v2"].produced_by_unauthorized == ("c1",)
    assert found["v9"].as_dict()["reason"] == "never_recorded"
