"""Records reach their contract the same way whether or not their route is already cached."""

from __future__ import annotations

from contracts import load_registry

PRIVACY = {
    "event_name": "feature_flag.evaluation",
    "policy.module": "privacy",
    "service.name": "checkout",
    "deployment.environment.name": "prod",
    "feature_flag.key": "k",
    "feature_flag.version": "v1",
    "feature_flag.result.variant": "on",
    "decision.id": "d-1",
    "privacy.purpose": "ads",
    "privacy.consent.state": "granted",
}


def _routes(records):
    registry = load_registry()
    first = [registry.check(r) for r in records]  # routes found and cached
    again = [registry.check(r) for r in records]  # routes from the cache
    assert again == first
    return [(v.contract_id, v.contract_version, [x.pointer for x in v.violations]) for v in first]


def test_pinned_versions_of_equal_but_different_values_are_routed_apart():
    records = [
        PRIVACY,
        {**PRIVACY, "contract.version": "1.0"},
        {**PRIVACY, "contract.version": "1"},
        {**PRIVACY, "contract.version": 1},  # a number: not a cache key, same route as "1"
        {**PRIVACY, "contract.version": True},  # equal to 1 as a dict key, but no version "True"
        {**PRIVACY, "contract.version": "9"},
    ]
    privacy = "feature_flag.evaluation.privacy"
    routes = _routes(records)
    assert [r[:2] for r in routes] == [
        (privacy, "1.1.0"),
        (privacy, "1.0.0"),
        (privacy, "1.1.0"),
        (privacy, "1.1.0"),
        (privacy, None),
        (privacy, None),
    ]
    assert routes[4][2] == routes[5][2] == ["/contract.version"]


def test_values_that_cannot_be_keys_are_routed_without_the_cache():
    routes = _routes([{**PRIVACY, "policy.module": ["privacy"]}, {**PRIVACY, "event_name": {}}])
    assert routes[0][0] == "feature_flag.evaluation"  # not a module name: the base contract
    assert routes[1][:2] == (None, None)
