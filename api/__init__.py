"""flaglens' read API: analyses, the weekly report, quarantine, alerts and row exports of a
running server over HTTP, under ``/api/v1`` (see docs/api.md).

Beside the dashboards in the layer above the analytics: it imports analytics, reports, alerts
and store, never ingest or the application. The application wires it to its store, its token
file and its listener (:func:`create_read_app`). Names are imported on first use, so that the
client's use of the wire format (:mod:`api.params`, :mod:`api.formats`) does not load FastAPI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.access import ReadAccess, Verdict, token_of
    from api.app import create_api, error_response
    from api.errors import ApiError
    from api.formats import FORMATS, MEDIA_TYPES, Format, encode
    from api.limits import ApiLimits
    from api.listener import create_read_app
    from api.params import PREFIX, analysis_params

# name → the module that defines it
_HOMES = {
    "FORMATS": "api.formats",
    "MEDIA_TYPES": "api.formats",
    "PREFIX": "api.params",
    "ApiError": "api.errors",
    "ApiLimits": "api.limits",
    "Format": "api.formats",
    "ReadAccess": "api.access",
    "Verdict": "api.access",
    "analysis_params": "api.params",
    "create_api": "api.app",
    "create_read_app": "api.listener",
    "encode": "api.formats",
    "error_response": "api.app",
    "token_of": "api.access",
}
__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "PREFIX",
    "ApiError",
    "ApiLimits",
    "Format",
    "ReadAccess",
    "Verdict",
    "analysis_params",
    "create_api",
    "create_read_app",
    "encode",
    "error_response",
    "token_of",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'api' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
