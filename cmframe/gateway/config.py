"""Configuration of the embedded gateway and its fault actions."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import SpecError

__all__ = ["GatewayConfig", "Fault", "parse_fault", "FAULT_KINDS", "REPORT_FORMATS"]

#: Fault actions a request can be given (see the package docstring).
FAULT_KINDS: frozenset[str] = frozenset(
    {"ok", "error", "error_after", "drop_before", "drop_after", "slow"}
)
#: Formats status reports are pushed in.
REPORT_FORMATS: frozenset[str] = frozenset({"json", "xml", "get", "form"})


@dataclass(frozen=True)
class Fault:
    """What the gateway does with one ``POST /v1.0/message`` request.

    Attributes
    ----------
    kind : str
        ``"ok"`` process and answer; ``"error"`` answer ``status`` without
        accepting anything; ``"error_after"`` accept (ledger) then answer
        ``status``; ``"drop_before"`` close the connection without accepting;
        ``"drop_after"`` accept then close without answering (the ambiguous
        case); ``"slow"`` accept then answer after ``delay`` seconds.
    status : int or None
        HTTP status for ``error``/``error_after`` (500, 502, 503, 504, 429).
    retry_after : float or None
        ``Retry-After`` seconds sent with the error (429 and 503 get one by default).
    delay : float
        Extra seconds before answering (added to the configured latency).
    """

    kind: str = "ok"
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise SpecError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")


def parse_fault(spec: str | int | Mapping[str, Any] | Fault | None, *, slow_seconds: float = 30.0) -> Fault:
    """Turn a short fault spelling into a :class:`Fault`.

    Parameters
    ----------
    spec : str, int, mapping, Fault or None
        ``None``/``"ok"``; an HTTP status (``500``, ``"503"``, ``"429:2"`` with
        ``Retry-After: 2``); ``"500_after"`` (accept, then 500); ``"drop_before"``,
        ``"drop_after"``; ``"slow"`` or ``"slow:5"``; ``"delay:0.5"`` (answer
        normally after 0.5 s); or a mapping of :class:`Fault` fields.
    slow_seconds : float
        Delay of a bare ``"slow"``.

    Returns
    -------
    Fault
    """
    if spec is None:
        return Fault()
    if isinstance(spec, Fault):
        return spec
    if isinstance(spec, Mapping):
        return Fault(**dict(spec))
    if isinstance(spec, int):
        return _status_fault(spec, None, after=False)
    text = str(spec).strip().lower()
    name, _, arg = text.partition(":")
    try:
        value = float(arg) if arg else None
    except ValueError:
        raise SpecError(f"bad fault {spec!r}: {arg!r} is not a number") from None
    if name in {"ok", ""}:
        return Fault()
    if name == "delay":
        return Fault("ok", delay=value or 0.0)
    if name in {"drop_before", "drop_after"}:
        return Fault(name)
    if name == "slow":
        return Fault("slow", delay=slow_seconds if value is None else value)
    after = name.endswith("_after")
    code = name.removesuffix("_after")
    if code.isdigit():
        return _status_fault(int(code), value, after=after)
    raise SpecError(f"unknown fault {spec!r}")


def _status_fault(status: int, retry_after: float | None, *, after: bool) -> Fault:
    if not 400 <= status <= 599:
        raise SpecError(f"a fault status must be 4xx or 5xx, not {status}")
    if retry_after is None and status in {429, 503}:
        retry_after = 1.0
    return Fault("error_after" if after else "error", status=status, retry_after=retry_after)


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """Every option of the embedded gateway (documented in :mod:`cmframe.gateway`).

    Build one directly, or pass the same names as keyword options to
    :func:`~cmframe.gateway.serve_gateway` / :class:`~cmframe.testing.FakeGateway`.
    """

    # --- accounts and acceptance -------------------------------------------------
    tokens: tuple[str, ...] | None = field(default=None, repr=False)
    ledger: str | Path | None = None
    max_msg: int = 1000
    balance: int | None = None
    blacklist: frozenset[str] = frozenset()
    spam_words: tuple[str, ...] = ()
    unroutable_prefixes: tuple[str, ...] = ()
    # --- faults ------------------------------------------------------------------
    faults: tuple[Fault, ...] | Mapping[int, Fault] = ()
    error_rate: float = 0.0
    error_status: int = 500
    throttle_rate: float = 0.0
    unavailable_rate: float = 0.0
    drop_before_rate: float = 0.0
    drop_after_rate: float = 0.0
    retry_after: float = 1.0
    latency: float = 0.0
    latency_jitter: float = 0.0
    slow_seconds: float = 30.0
    seed: int | str | None = 0
    # --- outcomes of accepted messages ---------------------------------------------
    delivered_rate: float = 0.93
    failed_rate: float = 0.05
    rejected_rate: float = 0.02
    prefix_rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    channel_rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    accepted_delay: float = 1.0
    delivery_delay: float = 5.0
    default_validity: str = "24h"
    max_validity_hours: float = 72.0
    failed_codes: tuple[int, ...] = (1, 5, 6, 9, 13, 31, 34, 36, 44)
    rejected_codes: tuple[int, ...] = (204, 11, 107)
    operators: Mapping[str, str] = field(default_factory=dict)
    time_scale: float = 1.0
    # --- status-report delivery ----------------------------------------------------
    webhook: str | None = None
    report_format: str = "json"
    report_batch: int = 1
    report_concurrency: int = 2
    report_retries: int = 8
    report_backoff: float = 0.2
    report_timeout: float = 5.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    reorder_window: float = 2.0
    export_csv: str | Path | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once
        if self.tokens is not None:
            tokens = (self.tokens,) if isinstance(self.tokens, str) else tuple(self.tokens)
            set_(self, "tokens", tuple(str(getattr(t, "reveal", lambda t=t: t)()).strip() for t in tokens))
        blacklist = (self.blacklist,) if isinstance(self.blacklist, str) else self.blacklist
        set_(self, "blacklist", frozenset(_digits(n) for n in blacklist))
        if isinstance(self.spam_words, str):
            set_(self, "spam_words", (self.spam_words,))
        set_(self, "spam_words", tuple(w.lower() for w in self.spam_words))
        if isinstance(self.unroutable_prefixes, str):
            set_(self, "unroutable_prefixes", (self.unroutable_prefixes,))
        if isinstance(self.faults, Mapping):
            set_(self, "faults", {int(k): parse_fault(v, slow_seconds=self.slow_seconds) for k, v in self.faults.items()})
        else:
            faults = self.faults.split(",") if isinstance(self.faults, str) else self.faults
            set_(self, "faults", tuple(parse_fault(f, slow_seconds=self.slow_seconds) for f in faults))
        if self.report_format not in REPORT_FORMATS:
            raise SpecError(f"report_format must be one of {sorted(REPORT_FORMATS)}, not {self.report_format!r}")
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise SpecError("time_scale must be a positive number")
        for name in ("error_rate", "throttle_rate", "unavailable_rate", "drop_before_rate",
                     "drop_after_rate", "duplicate_rate", "reorder_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SpecError(f"{name} must be between 0 and 1")
        if self.report_batch < 1 or self.report_concurrency < 1:
            raise SpecError("report_batch and report_concurrency must be at least 1")

    def replace(self, **options: Any) -> GatewayConfig:
        """Return a copy with some options changed (unknown names raise ``SpecError``)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise SpecError(f"unknown gateway option(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **options)

    def fault_script(self, request_number: int) -> Fault | None:
        """The scripted fault of the n-th message request (1-based), if any."""
        if isinstance(self.faults, Mapping):
            return self.faults.get(request_number)
        if 1 <= request_number <= len(self.faults):
            return self.faults[request_number - 1]
        return None


def _digits(number: object) -> str:
    """A number without its ``+`` or ``00`` international prefix, for comparisons."""
    text = str(number).strip()
    if text.startswith("+"):
        return text[1:]
    if text.startswith("00"):
        return text[2:]
    return text


def as_config(config: GatewayConfig | None, options: Mapping[str, Any]) -> GatewayConfig:
    """Merge a config and keyword options into one :class:`GatewayConfig`."""
    base = config if config is not None else GatewayConfig()
    return base.replace(**options) if options else base
