"""Where a :class:`~flaglens.client.Client` reads: a server's read API, or a database file.

Both backends answer the same calls with the same values: the HTTP one asks ``/api/v1`` for
what the local one computes with the same functions (the named analyses, the weekly report,
the dry-run evaluator, the export encoders), so whatever the client prints or writes is the
same bytes either way.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from alerts.rules import load_alert_config
from analytics.analyses import Query, json_ready
from analytics.errors import AnalyticsError
from analytics.exports import ExportQuery, count_rows, export_reader
from analytics.session import AnalyticsConfig, Session
from analytics.windows import TimeWindow
from api.formats import SHAPES, Format, encode
from api.limits import ApiLimits
from api.params import PREFIX, analysis_params
from contracts.errors import ContractError
from flaglens.trust import system_trust
from store.connection import Store
from store.errors import StoreError
from store.location import StoreLocation


class ClientError(Exception):
    """A read that failed; ``status`` is the API's HTTP status (0: the server was not reached,
    or a local read failed) and the message says why and what to do."""

    def __init__(self, detail: str, *, status: int = 0, code: str = "") -> None:
        self.detail = detail
        self.status = status
        self.code = code
        super().__init__(detail)


@contextmanager
def _as_client_errors() -> Iterator[None]:
    """A local read's failure as the ClientError an HTTP read would raise."""
    try:
        yield
    except (AnalyticsError, ContractError, StoreError) as exc:
        raise ClientError(str(exc)) from exc


class Backend(Protocol):
    def analysis_rows(self, name: str, query: Query) -> list[dict[str, Any]]: ...

    def weekly(self, week: str) -> dict[str, Any]: ...

    def dry_run(self, rules: Path, at: datetime | None) -> dict[str, Any]: ...

    def alert_states(self, state: str | None, rule: str | None) -> list[dict[str, Any]]: ...

    def alert_history(
        self, window: TimeWindow, rule: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]: ...

    def export_chunks(
        self, query: ExportQuery, fmt: Format, limit: int | None
    ) -> Iterator[bytes]: ...

    def preview_contracts(
        self, files: list[tuple[str, Any]], window: TimeWindow, service: str | None, examples: int
    ) -> dict[str, Any]: ...

    def close(self) -> None: ...


def _window_params(window: TimeWindow) -> dict[str, str]:
    return {"from": window.start.isoformat(), "to": window.end.isoformat()}


class HttpBackend:
    """Reads through a server's read API."""

    def __init__(self, url: str, *, token: str | None, verify: bool | str, timeout: float) -> None:
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        trust: bool | ssl.SSLContext
        if isinstance(verify, str):
            trust = ssl.create_default_context(cafile=verify)
        else:
            trust = system_trust() if verify else False
        self._http = httpx.Client(base_url=self.url, headers=headers, verify=trust, timeout=timeout)

    def _failed(self, response: httpx.Response) -> ClientError:
        try:
            body = json.loads(response.read())
            detail, code = str(body["detail"]), str(body["error"])
        except (ValueError, KeyError, TypeError):
            detail, code = response.text[:500] or response.reason_phrase, ""
        status = response.status_code
        if status == 401:
            detail += " (give a read token with --token or FLAGLENS_TOKEN)"
        if status != 400:  # a 400 is about what was asked: say only that, as a local read does
            detail = f"the server at {self.url} answered {status}: {detail}"
        return ClientError(detail, status=status, code=code)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, PREFIX + path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot read from the server at {self.url}: {exc}") from exc
        if response.status_code != 200:
            raise self._failed(response)
        return response.json()

    def analysis_rows(self, name: str, query: Query) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._request(
            "GET", f"/analyses/{name}", params=analysis_params(query)
        )
        return rows

    def weekly(self, week: str) -> dict[str, Any]:
        report: dict[str, Any] = self._request("GET", f"/reports/weekly/{week}")
        return report

    def dry_run(self, rules: Path, at: datetime | None) -> dict[str, Any]:
        # checked here first, so that a broken file is reported as it is without a server
        load_alert_config(rules)
        result: dict[str, Any] = self._request(
            "POST", "/alerts/dry-run",
            content=rules.read_bytes(), headers={"content-type": "application/toml"},
            params={"at": at.isoformat()} if at else {},
        )  # fmt: skip
        return result

    def alert_states(self, state: str | None, rule: str | None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("state", state), ("rule", rule)) if v is not None}
        rows: list[dict[str, Any]] = self._request("GET", "/alerts", params=params)
        return rows

    def alert_history(
        self, window: TimeWindow, rule: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        params = _window_params(window) | {"limit": str(limit), "offset": str(offset)}
        if rule is not None:
            params["rule"] = rule
        page = self._request("GET", "/alerts/history", params=params)
        rows: list[dict[str, Any]] = page["transitions"]
        return rows

    def export_chunks(self, query: ExportQuery, fmt: Format, limit: int | None) -> Iterator[bytes]:
        params = _window_params(query.window) | dict(query.filters) | {"format": fmt}
        if limit is not None:
            params["limit"] = str(limit)
        try:
            with self._http.stream(
                "GET", f"{PREFIX}/exports/{query.table}", params=params
            ) as response:
                if response.status_code != 200:
                    raise self._failed(response)
                yield from response.iter_bytes()
        except httpx.HTTPError as exc:
            raise ClientError(f"the export from {self.url} failed: {exc}") from exc

    def preview_contracts(
        self, files: list[tuple[str, Any]], window: TimeWindow, service: str | None, examples: int
    ) -> dict[str, Any]:
        params = _window_params(window) | {"examples": str(examples)}
        if service is not None:
            params["service"] = service
        body = {"schemas": [{"path": path, "schema": schema} for path, schema in files]}
        result: dict[str, Any] = self._request(
            "POST", "/contracts/preview", json=body, params=params
        )
        return result

    def close(self) -> None:
        self._http.close()


class LocalBackend:
    """Reads a store directly, read-only: a database file (which cannot be open in a running
    server meanwhile) or a DuckLake (which servers write meanwhile)."""

    def __init__(
        self, db: Path | StoreLocation, config: AnalyticsConfig, limits: ApiLimits | None = None
    ) -> None:
        self.db = db
        with _as_client_errors():
            self._store = Store.open(db, read_only=True)
        self.session = Session(self._store.cursor, config)
        self.limits = limits or ApiLimits()

    def analysis_rows(self, name: str, query: Query) -> list[dict[str, Any]]:
        with _as_client_errors():
            return self.session.analyze(name, query)

    def weekly(self, week: str) -> dict[str, Any]:
        from reports.weekly import build_weekly

        with _as_client_errors():
            return build_weekly(self.session, week)

    def dry_run(self, rules: Path, at: datetime | None) -> dict[str, Any]:
        from alerts.evaluator import Evaluator

        with _as_client_errors():
            evaluator = Evaluator(self.session, load_alert_config(rules))
            return evaluator.evaluate(at, dry_run=True).as_dict()

    def alert_states(self, state: str | None, rule: str | None) -> list[dict[str, Any]]:
        from alerts.state import alert_states

        with _as_client_errors():
            rows: list[dict[str, Any]] = json_ready(
                alert_states(self.session.cursor(), state=state, rule=rule)
            )
        return rows

    def alert_history(
        self, window: TimeWindow, rule: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        from alerts.state import alert_history

        with _as_client_errors():
            rows: list[dict[str, Any]] = json_ready(
                alert_history(self.session.cursor(), window, rule=rule, limit=limit, offset=offset)
            )
        return rows

    def export_chunks(self, query: ExportQuery, fmt: Format, limit: int | None) -> Iterator[bytes]:
        cap = self.limits.export_max_rows
        if limit is not None and not 1 <= limit <= cap:
            raise ClientError(f"limit {limit} is not between 1 and the export cap {cap:,}")
        cursor = self.session.cursor()
        try:
            with _as_client_errors():
                rows = count_rows(cursor, query)
            if limit is None and rows > cap:
                raise ClientError(
                    f"the {query.table} export holds {rows:,} rows, more than the cap of "
                    f"{cap:,}; narrow the time range or filters, or ask for the first rows "
                    "with --limit"
                )
            with _as_client_errors():
                reader = export_reader(
                    cursor, query, limit=min(rows, limit or cap), shape=SHAPES[fmt],
                    batch_rows=self.limits.export_batch_rows,
                )  # fmt: skip
            yield from encode(fmt, reader.schema, reader)
        finally:
            cursor.close()

    def preview_contracts(
        self, files: list[tuple[str, Any]], window: TimeWindow, service: str | None, examples: int
    ) -> dict[str, Any]:
        from analytics.contract_preview import preview_contracts
        from contracts import build_registry

        with _as_client_errors():
            registry = build_registry(files)
            cursor = self.session.cursor()
            try:
                return preview_contracts(
                    cursor, registry, window, service=service, examples=examples
                ).as_dict()
            finally:
                cursor.close()

    def close(self) -> None:
        self._store.close()
