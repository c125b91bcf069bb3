"""Why an export request is refused as a whole; each error knows its HTTP and gRPC status.

    IngestError
    ├── MalformedRequest        400 / INVALID_ARGUMENT   body cannot be decoded as OTLP
    │   └── MalformedDecisionLog                         ... or as an OPA decision-log upload
    ├── UnsupportedMediaType    415 / INVALID_ARGUMENT   Content-Type is not OTLP protobuf or JSON
    ├── UnsupportedEncoding     415 / INVALID_ARGUMENT   Content-Encoding is not gzip or identity
    ├── PayloadTooLarge         413 / RESOURCE_EXHAUSTED body, inflated body or record count too big
    ├── Overloaded              503 / UNAVAILABLE        writer behind or decode worker lost; retry
    ├── Unauthenticated         401 / UNAUTHENTICATED    no or unknown bearer token
    └── PermissionDenied        403 / PERMISSION_DENIED  token may not write for this service

Records that break a contract or a per-record limit are not errors here: they are rejected one
by one and answered in the OTLP partial success.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class IngestError(Exception):
    """A request that is answered with a failure status instead of being stored."""

    status: int = 400
    grpc_code: str = "INVALID_ARGUMENT"

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in decode workers and re-raised in the server: keep the class, the message and
        # the attributes, whatever the subclass's constructor takes.
        return (_rebuild, (type(self), str(self), self.__dict__))


def _rebuild(cls: type[IngestError], message: str, state: dict[str, Any]) -> IngestError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class MalformedRequest(IngestError):
    """The body is not a decodable OTLP request of the declared encoding."""

    def __init__(self, encoding: str, problem: str) -> None:
        self.encoding = encoding
        self.problem = problem
        super().__init__(f"cannot decode OTLP/{encoding} body: {problem}")


class MalformedDecisionLog(MalformedRequest):
    """The body is not an OPA decision-log upload (a gzipped JSON array of events)."""

    def __init__(self, problem: str) -> None:
        self.encoding = "json"
        self.problem = problem
        IngestError.__init__(self, f"cannot decode the OPA decision log: {problem}")


class UnsupportedMediaType(IngestError):
    status = 415

    def __init__(self, received: str | None, supported: Sequence[str] = ()) -> None:
        self.received = received
        allowed = ", ".join(supported or ("application/x-protobuf", "application/json"))
        super().__init__(f"Content-Type {received!r} is not supported; send one of: {allowed}")


class UnsupportedEncoding(IngestError):
    status = 415

    def __init__(self, received: str) -> None:
        self.received = received
        super().__init__(
            f"Content-Encoding {received!r} is not supported; send gzip or an uncompressed body"
        )


class PayloadTooLarge(IngestError):
    status = 413
    grpc_code = "RESOURCE_EXHAUSTED"

    def __init__(self, *, limit: int, received: int, stage: str) -> None:
        self.limit = limit
        self.received = received
        self.stage = stage
        what = {
            "body": f"request body is over the limit of {limit} bytes (received {received})",
            "decompressed": f"decompressed body is over the limit of {limit} bytes "
            f"(stopped inflating at {received})",
            "records": f"request holds {received} records, over the limit of {limit}",
        }[stage]
        super().__init__(f"{what}; export smaller batches")


class Overloaded(IngestError):
    status = 503
    grpc_code = "UNAVAILABLE"

    def __init__(self, retry_after: float, reason: str = "the storage writer is behind") -> None:
        self.retry_after = retry_after
        super().__init__(f"{reason}; retry after {retry_after:.1f} s (nothing was stored)")


class Unauthenticated(IngestError):
    status = 401
    grpc_code = "UNAUTHENTICATED"

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}; send 'Authorization: Bearer <token>'")


class PermissionDenied(IngestError):
    status = 403
    grpc_code = "PERMISSION_DENIED"

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
