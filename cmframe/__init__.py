"""cmframe: run and study CM.com Business Messaging campaigns from pandas.

``import cmframe`` registers the ``df.cm`` accessor on pandas DataFrames (and on
Dask DataFrames when Dask is installed). The data flow, one module per stage::

    recipients --build--> plan --send--> results --merge_status--> campaign --summary/errors/latency-->

Public names are imported lazily so that ``import cmframe`` stays fast and the
server stack (starlette, uvicorn) is loaded only when a server is started.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import accessor as _accessor  # noqa: F401  (registers df.cm)
from .exceptions import (
    CMFrameError,
    DuplicateRecipientError,
    GatewayError,
    JournalError,
    JournalMismatch,
    MissingColumnError,
    PlanError,
    ReportError,
    RequestRejected,
    SendError,
    SpecError,
    TokenError,
)
from .secret import ProductToken

__version__ = "0.1.0"

try:  # the optional extra "dask": registers ddf.cm too
    from . import dask as _dask  # noqa: F401
except ImportError:  # Dask is not installed
    pass

# name -> module that defines it
_LAZY: dict[str, str] = {
    "build": "cmframe.build",
    "layout": "cmframe.build",
    "requests": "cmframe.build",
    "send": "cmframe.send",
    "read_journal": "cmframe.journal",
    "RetryPolicy": "cmframe.retry",
    "read_status_reports": "cmframe.reports",
    "merge_status": "cmframe.reports",
    "fetch_transactions": "cmframe.reports",
    "serve_receiver": "cmframe.receiver",
    "serve_gateway": "cmframe.gateway",
    "GatewayConfig": "cmframe.gateway",
    "summary": "cmframe.analysis",
    "errors": "cmframe.analysis",
    "latency": "cmframe.analysis",
}

__all__ = [
    "__version__",
    "CMFrameError",
    "DuplicateRecipientError",
    "GatewayError",
    "JournalError",
    "JournalMismatch",
    "MissingColumnError",
    "PlanError",
    "ProductToken",
    "ReportError",
    "RequestRejected",
    "SendError",
    "SpecError",
    "TokenError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cmframe' has no attribute {name!r}")
    mod = importlib.import_module(module)
    # ``build`` and ``send`` name both a module and its function: the module is
    # callable (see _callable.py), so one object serves both, whatever the
    # import order.
    value = mod if module.rsplit(".", 1)[1] == name else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

