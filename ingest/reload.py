"""Live reload of the contracts of a running server (SIGHUP, or the admin endpoint).

The new set is read and linted first (:func:`contracts.lint_set`: the schemas, the set and
every example), then compiled, and new decode workers are started on it and waited for. Only
then does the service swap its registry, pipeline and workers in one assignment each; the old
workers finish the requests they hold (under the set those requests started with) and stop.
Requests arriving meanwhile go to whichever workers are current: nothing is refused.

A set that fails any step leaves the old one in place; the error is logged and kept in
:class:`ReloadStatus` (``/healthz`` shows it) until a reload succeeds.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from contracts import (
    ContractError,
    build_registry,
    default_directory,
    lint_set,
    read_path,
)
from ingest.pipeline import IngestPipeline
from ingest.workers import Preparers

if TYPE_CHECKING:
    from ingest.service import IngestService

log = logging.getLogger(__name__)

# how long new decode workers may take to start and load the contracts (spawned interpreters)
WORKER_START_TIMEOUT = 120.0
_FINDINGS_SHOWN = 5


class ReloadFailed(Exception):
    """The new contract set was not loaded; the message says why (the old set stays)."""


@dataclass
class ReloadStatus:
    """The contracts a server runs, and how its reloads went (for /healthz)."""

    generation: int
    """1 for the set loaded at start, one more per successful reload."""
    loaded_at: str
    contracts: list[str]
    reloads: int = 0
    failed_reloads: int = 0
    last_error: str | None = None
    """Why the latest reload failed; None once one succeeds."""
    last_attempt_at: str | None = None
    last_trigger: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _names(pipeline: IngestPipeline) -> list[str]:
    return [f"{c.name}@{c.version}" for c in pipeline.registry.contracts]


@dataclass
class ContractReloader:
    """Reloads a service's contracts; one reload at a time."""

    service: IngestService
    status: ReloadStatus = field(init=False)
    # one reload at a time; the status has a lock of its own, so that /healthz (on the OTLP
    # event loop) never waits for a reload starting its workers
    _reloading: threading.Lock = field(init=False, default_factory=threading.Lock)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.status = ReloadStatus(1, _now(), _names(self.service.pipeline))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self.status.as_dict()

    def reload(self, trigger: str) -> ReloadStatus:
        """Load, lint and swap in the contracts of the service's contracts directory.

        Raises:
            ReloadFailed: the old set stays; the message (also in the status) says why.
        """
        with self._reloading:
            with self._lock:
                self.status.last_attempt_at = _now()
                self.status.last_trigger = trigger
            try:
                pipeline, preparers = self._prepare()
            except ReloadFailed as exc:
                with self._lock:
                    self.status.failed_reloads += 1
                    self.status.last_error = str(exc)
                log.error("contract reload (%s) failed, the old contracts stay: %s", trigger, exc)
                raise
            service = self.service
            old = service.preparers
            service.registry, service.pipeline, service.preparers = (
                pipeline.registry,
                pipeline,
                preparers,
            )
            with self._lock:
                status = self.status
                status.generation += 1
                status.reloads += 1
                status.loaded_at = _now()
                status.contracts = _names(pipeline)
                status.last_error = None
                snapshot = ReloadStatus(**asdict(status))
            log.info(
                "contracts reloaded (%s): generation %d, %d contract versions",
                trigger,
                snapshot.generation,
                len(snapshot.contracts),
            )
        # the old workers finish what they hold, without holding up the caller
        threading.Thread(
            target=old.retire, args=(preparers,), name="retire-decode-workers", daemon=True
        ).start()
        return snapshot

    def _prepare(self) -> tuple[IngestPipeline, Preparers]:
        settings = self.service.settings
        directory = settings.contracts_dir or default_directory()
        try:
            contract_set = read_path(directory)
        except ContractError as exc:
            raise ReloadFailed(f"cannot read {directory}: {exc}") from exc
        errors = lint_set(contract_set).at_or_above("error")
        if errors:
            shown = "; ".join(
                f"{f.id} {f.file}{' ' + f.pointer if f.pointer else ''}: {f.message}"
                for f in errors[:_FINDINGS_SHOWN]
            )
            more = (
                f" (+{len(errors) - _FINDINGS_SHOWN} more)" if len(errors) > _FINDINGS_SHOWN else ""
            )
            raise ReloadFailed(
                f"{directory} does not lint ({len(errors)} errors): {shown}{more}; fix them "
                "(flaglens contracts lint) and reload again"
            )
        files = [(doc.path, doc.data) for doc in contract_set.schemas]
        try:
            registry = build_registry(files)
        except ContractError as exc:
            raise ReloadFailed(f"{directory}: {exc}") from exc
        pipeline = IngestPipeline(registry, settings.limits, settings.uncontracted)
        # the workers check against the documents linted here, whatever the files say by now
        preparers = Preparers(pipeline, files, settings.decode_workers)
        try:
            preparers.ready(WORKER_START_TIMEOUT)
        except (BrokenProcessPool, FutureTimeout, OSError) as exc:
            preparers.close()
            raise ReloadFailed(
                f"the decode workers did not start on {directory}: {exc or type(exc).__name__}"
            ) from exc
        return pipeline, preparers
