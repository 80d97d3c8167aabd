"""The ``validity`` field: relative (``"2h"``, ``"30m"``) or absolute, in gateway syntax.

Accepted inputs and what goes out:

* ``"2h"`` / ``"30m"`` (any case, spaces allowed) -> ``"2h"`` / ``"30m"``;
  a mix of units (``"2h30m"``) is not supported by the gateway.
* ``datetime.timedelta`` -> ``"Nh"`` when a whole number of hours, else ``"Nm"``.
* an absolute string in one of the spec's formats (``"2017-04-20 11:50:05 GMT"``,
  ``"...+8"``, ``"...-07:00"``, or no zone: CE(S)T) -> kept verbatim.
* ``datetime`` / ``pandas.Timestamp`` -> ``"YYYY-MM-DD HH:MM:SS+HH:MM"``
  (naive values are written without zone, which the gateway reads as CE(S)T).

The spec's maximum is 72 hours; a longer validity is a per-row 305.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pandas as pd

__all__ = ["MAX_VALIDITY", "parse_validity", "ValidityError"]

MAX_VALIDITY = dt.timedelta(hours=72)
_CM_TZ = ZoneInfo("Europe/Amsterdam")  # "CE(S)T (CM local time)" when no zone is given

_RELATIVE = re.compile(r"^\s*(\d+)\s*([hHmM])\s*$")
_BOTH_UNITS = re.compile(r"^\s*\d+\s*[hH]\s*\d+\s*[mM]\s*$")
_ABSOLUTE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s*(GMT|UTC|Z|[+-]\d{1,2}(?::?\d{2})?)?\s*$",
    re.IGNORECASE,
)


class ValidityError(ValueError):
    """A validity value the gateway would reject; ``both_units`` marks ``"2h30m"``."""

    def __init__(self, message: str, *, both_units: bool = False) -> None:
        super().__init__(message)
        self.both_units = both_units


def _zone(text: str | None) -> dt.tzinfo:
    if text is None:
        return _CM_TZ
    t = text.upper()
    if t in ("GMT", "UTC", "Z"):
        return dt.UTC
    sign = -1 if t[0] == "-" else 1
    body = t[1:].replace(":", "")
    hours = int(body[:-2]) if len(body) > 2 else int(body)
    minutes = int(body[-2:]) if len(body) > 2 else 0
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def _relative(delta: dt.timedelta) -> str:
    if delta <= dt.timedelta(0):
        raise ValidityError(f"validity: {delta} is not a positive duration")
    if delta > MAX_VALIDITY:
        raise ValidityError(f"validity: {delta} is longer than the gateway's 72 h maximum")
    seconds = delta.total_seconds()
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60:
        raise ValidityError(f"validity: {delta} is not a whole number of minutes")
    return f"{int(seconds // 60)}m"


def _check_absolute(when: dt.datetime, now: dt.datetime, text: str) -> None:
    if when - now > MAX_VALIDITY:
        raise ValidityError(f"validity: {text!r} is more than 72 h ahead (gateway maximum)")


def parse_validity(value: object, now: dt.datetime | None = None) -> str | None:
    """Return a validity in gateway syntax, or ``None`` when absent.

    Parameters
    ----------
    value : str, datetime, timedelta, pandas.Timestamp/Timedelta or None
        The validity of one message.
    now : datetime, optional
        Reference time for the 72-hour check of absolute values (default: now, UTC).

    Returns
    -------
    str or None

    Raises
    ------
    ValidityError
        Malformed, mixed units, not positive, or longer than 72 hours.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    now = now or dt.datetime.now(dt.UTC)
    if isinstance(value, pd.Timedelta):
        value = value.to_pytimedelta()
    if isinstance(value, dt.timedelta):
        return _relative(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=_CM_TZ)
        _check_absolute(aware, now, str(value))
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        if value.tzinfo is not None:
            off = value.utcoffset() or dt.timedelta(0)
            total = int(off.total_seconds() // 60)
            sign = "-" if total < 0 else "+"
            text += f"{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"
        return text
    if not isinstance(value, str):
        raise ValidityError(f"validity: cannot use {type(value).__name__} {value!r}")
    text = value.strip()
    if text == "":
        return None
    m = _RELATIVE.match(text)
    if m:
        amount, unit = int(m.group(1)), m.group(2).lower()
        delta = dt.timedelta(hours=amount) if unit == "h" else dt.timedelta(minutes=amount)
        if delta <= dt.timedelta(0):
            raise ValidityError(f"validity: {text!r} is not a positive duration")
        if delta > MAX_VALIDITY:
            raise ValidityError(f"validity: {text!r} is longer than the gateway's 72 h maximum")
        return f"{amount}{unit}"  # relative validity goes out in the gateway's own syntax
    if _BOTH_UNITS.match(text):
        raise ValidityError(
            f"validity: {text!r} mixes hours and minutes; the gateway takes one unit ('2h' or '150m')",
            both_units=True,
        )
    m = _ABSOLUTE.match(text)
    if not m:
        raise ValidityError(
            f"validity: {text!r} is neither relative ('2h', '30m') nor absolute ('2017-04-20 11:50:05 GMT')"
        )
    y, mo, d, hh, mm, ss, zone = m.groups()
    try:
        when = dt.datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss or 0), tzinfo=_zone(zone))
    except ValueError as exc:
        raise ValidityError(f"validity: {text!r} is not a valid date and time ({exc})") from None
    _check_absolute(when, now, text)
    return text
