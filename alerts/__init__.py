"""Alerting: rules as code, an evaluator with pending → firing → resolved states, and delivery
as Alertmanager-compatible webhooks."""
