"""Why the read API refuses a request; each error knows its HTTP status and its code.

    ApiError                    500 internal            (a bug: the API answers nothing else 500)
    ├── BadRequest              400 bad_request         bad time, filter, parameter or rules
    ├── Unauthenticated         401 unauthenticated     no or unknown token
    ├── Forbidden               403 forbidden           a token whose role may not read
    ├── NotFound                404 not_found           no such endpoint, analysis or export
    ├── NotAcceptable           406 not_acceptable      an export format the API does not write
    ├── ExportTooLarge          413 export_too_large    more rows than the export cap
    └── Unavailable             503 unavailable         retry after ``retry_after`` seconds
        ├── Busy                503 busy                every query slot is taken
        └── QueryTimeout        503 timeout             the query ran past the time limit

Every answer that is not a success is ``{"error": code, "detail": message}``; the message says
what was wrong, what is allowed and what to do.
"""

from __future__ import annotations


class ApiError(Exception):
    """A request answered with a failure status."""

    status: int = 500
    code: str = "internal"
    retry_after: float | None = None

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthenticated(ApiError):
    status = 401
    code = "unauthenticated"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class NotAcceptable(ApiError):
    status = 406
    code = "not_acceptable"


class ExportTooLarge(ApiError):
    status = 413
    code = "export_too_large"

    def __init__(self, table: str, rows: int, cap: int) -> None:
        self.rows = rows
        self.cap = cap
        super().__init__(
            f"the {table} export holds {rows:,} rows, more than the cap of {cap:,}; narrow the "
            "time range or filters, or ask for the first rows with limit="
        )


class Unavailable(ApiError):
    status = 503
    code = "unavailable"

    def __init__(self, detail: str, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Busy(Unavailable):
    code = "busy"

    def __init__(self, slots: int, waited: float) -> None:
        super().__init__(
            f"all {slots} query slots stayed busy for {waited:.1f} s; retry shortly (the "
            "server answers this many reads at once so that they never starve ingest)",
            retry_after=1.0,
        )


class QueryTimeout(Unavailable):
    code = "timeout"

    def __init__(self, limit: float) -> None:
        super().__init__(
            f"the query ran past the time limit of {limit:g} s and was stopped; narrow the "
            "time range or filters, or raise the server's --api-query-timeout",
            retry_after=1.0,
        )
