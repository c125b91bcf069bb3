"""The small company the sample week plays: its services, flags, cohorts and people.

Everything here is fixed; the seed only decides who does what when. The actors, modules and
environments agree with ``contracts/governance.toml``, so the only unauthorized changes in the
sample week are the ones the story list injects on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

ENVIRONMENTS = ("prod", "staging")
# share of traffic per environment
ENVIRONMENT_WEIGHTS = {"prod": 0.85, "staging": 0.15}
CONTROL_PLANE = "flag-control-plane"  # service.name of the process emitting policy.change events


@dataclass(frozen=True, slots=True)
class Flag:
    key: str
    module: str  # policy.module
    variants: tuple[str, ...] = ("on", "off")
    rollout: float = 0.5  # share of subjects getting the first variant
    every_session: bool = False  # evaluated on every session of its services


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    weight: float  # share of sessions
    median_ms: float  # server span latency, log-normal
    sigma: float
    error_rate: float
    routes: tuple[str, ...]
    flags: tuple[str, ...]  # flag keys evaluated per session (each with probability 0.6)
    decisions_as_span_events: bool = False  # emit decisions as span events instead of logs


FLAGS: dict[str, Flag] = {
    flag.key: flag
    for flag in (
        Flag("checkout-new-pricing", "release", rollout=0.5),
        Flag("checkout-express-pay", "release", rollout=0.3),
        Flag("checkout-fraud-check", "security", ("strict", "standard"), rollout=0.2),
        Flag("checkout-promo-engine", "cost", ("premium", "basic"), rollout=0.4),
        Flag("payments-3ds-step-up", "security", ("step-up", "skip"), rollout=0.25),
        Flag("payments-retry-policy", "cost", ("aggressive", "standard"), rollout=0.3),
        Flag("payments-wallets", "release", rollout=0.6),
        Flag("search-ranking-v2", "release", rollout=0.5, every_session=True),
        Flag("search-personalisation", "privacy", rollout=0.7),
        Flag("search-cache-tier", "cost", ("hot", "warm"), rollout=0.5),
        Flag("search-autocomplete", "release", rollout=0.8),
        Flag("auth-mfa-prompt", "security", ("prompt", "skip"), rollout=0.35),
        Flag("auth-session-ttl", "security", ("short", "long"), rollout=0.5),
        Flag("auth-passkeys", "release", rollout=0.2),
        Flag("recs-carousel-color", "release", ("teal", "orange"), rollout=0.5),
        Flag("recs-personalised", "privacy", rollout=0.6),
        Flag("recs-model-tier", "cost", ("large", "small"), rollout=0.3),
        Flag("recs-email-tracking", "privacy", rollout=0.4),
        # changed during the week but evaluated by no service (admin and back-office flags)
        Flag("admin-bulk-export", "release"),
        Flag("billing-invoice-v2", "cost"),
        Flag("privacy-data-retention", "privacy"),
        Flag("ops-maintenance-banner", "release"),
        Flag("checkout-gift-cards", "release"),
        Flag("security-ip-allowlist", "security"),
    )
}

SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service(
            "checkout",
            0.24,
            120.0,
            0.45,
            0.003,
            ("/checkout", "/checkout/confirm", "/cart"),
            (
                "checkout-new-pricing",
                "checkout-express-pay",
                "checkout-fraud-check",
                "checkout-promo-engine",
            ),
        ),
        Service(
            "payments",
            0.16,
            180.0,
            0.4,
            0.002,
            ("/payments/authorize", "/payments/capture"),
            (
                "checkout-new-pricing",
                "payments-3ds-step-up",
                "payments-retry-policy",
                "payments-wallets",
            ),
        ),
        Service(
            "search",
            0.26,
            60.0,
            0.5,
            0.002,
            ("/search", "/search/suggest"),
            (
                "search-ranking-v2",
                "search-personalisation",
                "search-cache-tier",
                "search-autocomplete",
            ),
        ),
        Service(
            "auth",
            0.14,
            40.0,
            0.35,
            0.001,
            ("/login", "/token/refresh"),
            ("auth-mfa-prompt", "auth-session-ttl", "auth-passkeys"),
            decisions_as_span_events=True,
        ),
        Service(
            "recommendations",
            0.20,
            90.0,
            0.5,
            0.002,
            ("/recommendations", "/recommendations/email"),
            ("recs-carousel-color", "recs-personalised", "recs-model-tier", "recs-email-tracking"),
        ),
    )
}

# cohort → share of subjects, and the baseline probability that a session ends engaged
COHORTS: dict[str, tuple[float, float]] = {
    "control": (0.50, 0.25),
    "beta-testers": (0.15, 0.30),
    "enterprise": (0.20, 0.35),
    "new-users": (0.15, 0.20),
}
ENGAGEMENT_ACTIONS = ("click", "add_to_cart", "purchase", "save")
ROLES = (("member",), ("member", "admin"), ("support",))
PRIVACY_PURPOSES = ("personalisation", "analytics", "marketing")
COST_CENTERS = ("cc-web", "cc-platform", "cc-growth")

# Signing keys of the control plane (generated from the seed; public halves go to keys.toml).
KEY_ENVIRONMENTS = {"cp-prod-2026": ("prod",), "cp-staging-2026": ("staging",)}
KEY_FOR_ENVIRONMENT = {"prod": "cp-prod-2026", "staging": "cp-staging-2026"}
# who normally changes which module, and who approves (agrees with contracts/governance.toml)
OWNER_OF_MODULE = {
    "release": "alice@example.com",
    "cost": "alice@example.com",
    "privacy": "bob@example.com",
    "security": "bob@example.com",
}
APPROVERS = ("dana@example.com", "erin@example.com", "frank@example.com")
# approvals each (module, environment) needs, as in contracts/governance.toml
APPROVALS = {
    "release": {"prod": 1, "staging": 0},
    "privacy": {"prod": 2, "staging": 1},
    "security": {"prod": 2, "staging": 1},
    "cost": {"prod": 1, "staging": 0},
}
