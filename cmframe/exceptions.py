"""Exceptions raised by cmframe.

Every exception cmframe raises on purpose derives from :class:`CMFrameError`, so
``except cmframe.CMFrameError`` catches them all. The hierarchy::

    CMFrameError
    ├── SpecError               a call-level mistake, found before any work is done
    │   └── MissingColumnError  a template placeholder or ``to=`` names no column
    ├── PlanError               the plan cannot be used for what was asked
    │   └── DuplicateRecipientError   ``duplicates="error"`` and the plan has some
    ├── TokenError              no product token given and none in ``CM_PRODUCT_TOKEN``
    ├── SendError               sending could not go on
    │   ├── RequestRejected     the gateway refused a whole request (101/102/103/202/203)
    │   └── JournalError        the journal cannot be used
    │       └── JournalMismatch the journal belongs to another plan
    ├── ReportError             status reports could not be read as asked
    └── GatewayError            the embedded gateway or receiver could not start or run

Row-level problems (a bad number, an empty body, a malformed status report) are
*not* exceptions: they are reported per row in the returned frames, with a code
and a reason, so that good rows still go.

No exception message ever contains the product token.
"""

from __future__ import annotations

__all__ = [
    "CMFrameError",
    "SpecError",
    "MissingColumnError",
    "PlanError",
    "DuplicateRecipientError",
    "TokenError",
    "SendError",
    "RequestRejected",
    "JournalError",
    "JournalMismatch",
    "ReportError",
    "GatewayError",
]


class CMFrameError(Exception):
    """Base class of every error cmframe raises on purpose."""


class SpecError(CMFrameError, ValueError):
    """A call-level mistake in the arguments, found before any work is done."""


class MissingColumnError(SpecError, KeyError):
    """A template placeholder or a column argument names a column the frame lacks."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class PlanError(CMFrameError, ValueError):
    """The plan cannot be used for the requested operation."""


class DuplicateRecipientError(PlanError):
    """The plan has duplicate recipients and ``duplicates="error"`` was asked."""


class TokenError(CMFrameError):
    """No product token was given and ``CM_PRODUCT_TOKEN`` is not set."""


class SendError(CMFrameError):
    """Sending could not go on."""


class RequestRejected(SendError):
    """The gateway rejected a whole request (request-level error code).

    Attributes
    ----------
    http_status : int
        The HTTP status of the answer.
    error_code : int or None
        The gateway's ``errorCode`` (101, 102, 103, 202, 203, ...).
    details : str or None
        The gateway's ``details`` text.
    result : pandas.DataFrame or None
        The result frame as recorded up to the rejection, when available.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_code: int | None = None,
        details: str | None = None,
        result=None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.details = details
        self.result = result


class JournalError(SendError):
    """The journal file cannot be used."""


class JournalMismatch(JournalError):
    """The journal was written for a different plan."""


class ReportError(CMFrameError, ValueError):
    """Status reports could not be read as asked (not a per-item problem)."""


class GatewayError(CMFrameError):
    """The embedded gateway or the receiver could not start or run."""
