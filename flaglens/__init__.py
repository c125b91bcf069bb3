"""The flaglens application: the command line, the server's composition and its periodic round,
and the Python client users import (``from flaglens import Client``).

No other package of flaglens imports this one; it wires the others together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flaglens.client import Client, ClientError

__all__ = ["Client", "ClientError"]


def __getattr__(name: str) -> Any:
    # imported on first use, so that the command line does not load the client's imports
    if name in __all__:
        from flaglens import client

        return getattr(client, name)
    raise AttributeError(f"module 'flaglens' has no attribute {name!r}")
