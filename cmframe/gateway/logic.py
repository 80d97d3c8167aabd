"""The gateway's pure logic: validate a ``POST /v1.0/message`` body, decide outcomes.

Nothing here does I/O: :func:`check_request` turns a parsed request into
per-message entries (the response's ``messages``) and ledger records, and
:func:`decide_outcome` draws a message's delivery outcome from the rules.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from hashlib import blake2b
from math import log as _log
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..codes import DELIVERY_ERROR_CODES, DETAILS, ERROR_CODES, MESSAGE_DETAILS
from ..encode import estimate_one
from .config import GatewayConfig, _digits

__all__ = [
    "RequestError",
    "Checked",
    "parse_json",
    "find_token",
    "check_request",
    "parse_validity",
    "decide_outcome",
    "OutcomeDrawer",
    "Outcome",
    "Rules",
    "expiry",
    "SimClock",
]

_NUMBER = re.compile(r"^\+?[0-9]+$")
_BODY_TYPES = frozenset({"auto", "text", "binary"})
_CET = ZoneInfo("Europe/Amsterdam")
_WORDS = struct.Struct("<8Q")
_2_53 = 2.0 ** -53
_NO_RULE: dict[str, Any] = {}
_GROUPINGS = (("customgrouping", "customGrouping"), ("customgrouping2", "customGrouping2"),
              ("customgrouping3", "customGrouping3"))
_INT_FIELDS = (("minimumnumberofmessageparts", "minimumNumberOfMessageParts"),
               ("maximumnumberofmessageparts", "maximumNumberOfMessageParts"), ("dcs", "dcs"))
# Key sets (lower case) for which a case-insensitive copy of a JSON object can be skipped.
_PLAIN_MSG_KEYS = frozenset({"from", "to", "body", "reference"})
_MSG_KEYS = _PLAIN_MSG_KEYS | {"allowedchannels", "validity", "dcs", "richcontent"} | {
    k for k, _ in _GROUPINGS + _INT_FIELDS}
_BODY_KEYS = frozenset({"content", "type"})


@dataclass
class RequestError(Exception):
    """A whole request refused: HTTP status, ``details`` and ``errorCode``."""

    status: int
    details: str
    error_code: int

    def body(self) -> dict[str, Any]:
        return {"details": self.details, "errorCode": self.error_code, "messages": []}


@dataclass
class Checked:
    """The outcome of checking one request."""

    entries: list[dict[str, Any]] = field(default_factory=list)  # response "messages", in order
    records: list[dict[str, Any]] = field(default_factory=list)  # accepted messages, for the ledger
    n_msg: int = 0  # msg objects in the request

    @property
    def accepted(self) -> int:
        return len(self.records)

    @property
    def parts(self) -> int:
        return sum(r["parts"] for r in self.records)


def _ci(obj: dict) -> dict:
    """Keys lower-cased: the gateway treats JSON keys case-insensitively."""
    return {str(k).lower(): v for k, v in obj.items()}


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse a request body; raise :class:`RequestError` (400, Invalid JSON, 202)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError(400, DETAILS["invalid_json"], 202) from None
    if not isinstance(data, dict):
        raise RequestError(400, DETAILS["invalid_json"], 202)
    return data


def _messages(data: dict) -> dict | None:
    messages = _ci(data).get("messages")
    return _ci(messages) if isinstance(messages, dict) else None


def find_token(headers: dict[str, str], data: dict | None) -> str | None:
    """The product token from the header, else from ``messages.authentication``."""
    token = headers.get("x-cm-producttoken")
    if token and token.strip():
        return token.strip()
    messages = _messages(data) if data is not None else None
    auth = messages.get("authentication") if messages else None
    if isinstance(auth, dict):
        value = _ci(auth).get("producttoken")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def check_token(token: str | None, config: GatewayConfig) -> None:
    """Refuse a missing token (103) or one without an account (101)."""
    if token is None:
        raise RequestError(400, DETAILS["invalid_token"], 103)
    if config.tokens is not None and token not in config.tokens:
        raise RequestError(400, DETAILS["no_account"], 101)


def _entry(to: Any, reference: Any, code: int, details: str | None, parts: int = 0) -> dict[str, Any]:
    return {
        "to": to,
        "status": "Accepted" if code == 0 else "Rejected",
        "reference": reference,
        "parts": parts,
        "messageDetails": details,
        "messageErrorCode": code,
    }


def _invalid(name: str) -> tuple[int, str]:
    return 305, f"The {name} field is invalid"


def _check_msg_fields(m: dict, config: GatewayConfig) -> tuple[int, str] | dict[str, Any]:
    """Message-level checks: a (code, details) rejection or the normalised fields.

    ``m`` has lower-case keys. The checks run in a fixed order (the first
    failing one is reported); optional fields are only looked at when present.
    """
    sender = m.get("from")
    if sender is None or (isinstance(sender, str) and not sender.strip()):
        return 301, MESSAGE_DETAILS["no_from"]
    if not isinstance(sender, str):
        return 301, "The FROM field is invalid"
    digits = sender.lstrip("+")
    if (digits.isdigit() and len(digits) > 16) or (not digits.isdigit() and len(sender) > 11):
        return 301, f"The FROM field '{sender}' is too long"
    body = m.get("body")
    if body is None:
        return 304, MESSAGE_DETAILS["no_body"]
    if not isinstance(body, dict):
        return _invalid("body")
    if not body.keys() <= _BODY_KEYS:  # keys already lower-case (the usual case) need no copy
        body = _ci(body)
    content = body.get("content")
    if content is None or content == "":
        return 304, MESSAGE_DETAILS["no_content"]
    if not isinstance(content, str):
        return _invalid("body.content")
    body_type = body.get("type")
    if body_type is not None and (not isinstance(body_type, str) or body_type.lower() not in _BODY_TYPES):
        return _invalid("body.type")
    optional = not m.keys() <= _PLAIN_MSG_KEYS  # any field beyond from/to/body/reference?
    channels = m.get("allowedchannels") if optional else None
    if channels is not None:
        if not isinstance(channels, list):
            return 305, MESSAGE_DETAILS["not_array"].format(obj="allowedChannels")
        if not all(isinstance(c, str) and c.strip() for c in channels):
            return _invalid("allowedChannels")
    reference = m.get("reference")
    if reference is not None and (not isinstance(reference, str) or not 1 <= len(reference) <= 32):
        return _invalid("reference")
    groupings = [None, None, None]
    dcs = lo = hi = validity = rich = None
    if optional:
        for i, (key, name) in enumerate(_GROUPINGS):
            value = m.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > 100):
                return _invalid(name)
            groupings[i] = value
        ints = []
        for key, name in _INT_FIELDS:
            value = m.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                return _invalid(name)
            ints.append(value)
        lo, hi, dcs = ints
        if lo is not None and hi is not None and lo > hi:
            return _invalid("minimumNumberOfMessageParts")
        validity = m.get("validity")
        if validity is not None and (not isinstance(validity, str) or _validity_spec(validity) is None):
            return _invalid("validity")
        rich = m.get("richcontent")
        if rich is not None and not isinstance(rich, dict):
            return _invalid("richContent")
    body_type = body_type.lower() if isinstance(body_type, str) else None
    force_ucs2 = dcs == 8 and body_type not in (None, "auto")
    est = estimate_one(content, force_ucs2)
    if hi is not None and est.parts > hi:
        return 305, f"The body needs {est.parts} parts, more than maximumNumberOfMessageParts ({hi})"
    if config.spam_words:
        lowered = content.lower()
        if any(w in lowered for w in config.spam_words):
            return 401, ERROR_CODES[401]
    return {
        "sender": sender,
        "body": content,
        "body_type": body_type,
        "channels": ",".join(c.strip() for c in channels) if channels else None,
        "reference": reference,
        "custom_grouping": groupings[0],
        "custom_grouping2": groupings[1],
        "custom_grouping3": groupings[2],
        "validity": validity,
        "dcs": dcs,
        "min_parts": lo,
        "max_parts": hi,
        "rich_content": orjson.dumps(rich).decode() if rich is not None else None,
        "encoding": est.encoding,
        "parts": est.parts,
    }


def _number_or_entry(number: Any, reference: str | None, blacklist: frozenset[str]) -> str | dict[str, Any]:
    """A ``to`` number of a valid message: the number to accept (stripped) or the entry rejecting it."""
    if isinstance(number, int) and not isinstance(number, bool):
        number = str(number)
    shown = number if isinstance(number, str) else None
    if number is None or (isinstance(number, str) and not number.strip()):
        return _entry(shown, reference, 302, MESSAGE_DETAILS["empty_number"])
    if not isinstance(number, str) or not _NUMBER.match(number.strip()):
        msisdn = number if isinstance(number, str) else orjson.dumps(number).decode()
        return _entry(shown, reference, 303, MESSAGE_DETAILS["not_a_number"].format(msisdn=msisdn))
    number = number.strip()
    if blacklist and _digits(number) in blacklist:
        return _entry(number, reference, 402, ERROR_CODES[402])
    return number


def check_request(data: dict[str, Any], config: GatewayConfig) -> Checked:
    """Check every ``msg``/``to`` of a parsed request (the token already checked).

    Parameters
    ----------
    data : dict
        The parsed JSON body.
    config : GatewayConfig

    Returns
    -------
    Checked
        One response entry per (msg, to) pair and a ledger record per accepted one.

    Raises
    ------
    RequestError
        For a request-level refusal (no ``msg``, ``msg`` not an array, too many ``msg``).
    """
    messages = _messages(data)
    msgs = messages.get("msg") if messages else None
    if msgs is None or msgs == []:
        raise RequestError(400, DETAILS["no_msg"], 203)
    if not isinstance(msgs, list):
        raise RequestError(400, MESSAGE_DETAILS["not_array"].format(obj="msg"), 203)
    if len(msgs) > config.max_msg:
        raise RequestError(400, f"{ERROR_CODES[203]}: more than {config.max_msg} MSG objects", 203)
    out = Checked(n_msg=len(msgs))
    entries, records = out.entries, out.records
    blacklist = config.blacklist
    match_number = _NUMBER.match
    for msg_index, raw in enumerate(msgs):
        if not isinstance(raw, dict):
            entries.append(_entry(None, None, 305, "A MSG object is an invalid type, must be an object"))
            continue
        m = raw if raw.keys() <= _MSG_KEYS else _ci(raw)  # lower-case keys already: no copy
        reference = m.get("reference")
        if not isinstance(reference, str):
            reference = None
        to = m.get("to")
        if to is None or to == []:
            entries.append(_entry(None, reference, 302, MESSAGE_DETAILS["empty_number"]))
            continue
        if not isinstance(to, list):
            shown = to if isinstance(to, str) else None
            entries.append(_entry(shown, reference, 302, MESSAGE_DETAILS["not_array"].format(obj="to")))
            continue
        fields = _check_msg_fields(m, config)
        rejected = isinstance(fields, tuple)
        parts = 0 if rejected else fields["parts"]
        for to_index, item in enumerate(to):
            if isinstance(item, dict):
                # {"number": ...} needs no lower-casing copy; anything else does (last spelling wins)
                number = item["number"] if len(item) == 1 and "number" in item else _ci(item).get("number")
            else:
                number = None
            if rejected:  # the message's own error, for each of its numbers
                if isinstance(number, int) and not isinstance(number, bool):
                    number = str(number)
                entries.append(_entry(number if isinstance(number, str) else None, reference, *fields))
                continue
            stripped = number.strip() if type(number) is str else None
            if not (stripped and match_number(stripped) and not (blacklist and _digits(stripped) in blacklist)):
                found = _number_or_entry(number, reference, blacklist)  # not the usual case: in full
                if isinstance(found, dict):
                    entries.append(found)
                    continue
                stripped = found
            entries.append({"to": stripped, "status": "Accepted", "reference": reference, "parts": parts,
                            "messageDetails": None, "messageErrorCode": 0})
            record = fields.copy()
            record["number"] = stripped
            record["msg_index"] = msg_index
            record["to_index"] = to_index
            record["entry"] = len(entries) - 1
            records.append(record)
    return out


def check_routable(checked: Checked, config: GatewayConfig) -> None:
    """Refuse the whole request when a number falls under an unroutable prefix."""
    if not config.unroutable_prefixes:
        return
    prefixes = tuple(_digits(p) for p in config.unroutable_prefixes)
    if any(_digits(r["number"]).startswith(prefixes) for r in checked.records):
        raise RequestError(400, DETAILS["unroutable"], 999)


def response_body(checked: Checked) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body for a checked request."""
    n = checked.accepted
    rejected = len(checked.entries) - n
    status = 400 if n == 0 else 200
    code = 201 if rejected else 0
    return status, {"details": DETAILS["created"].format(n=n), "errorCode": code, "messages": checked.entries}


# --- validity ---------------------------------------------------------------------

_RELATIVE = re.compile(r"^\s*(\d+)\s*([hm])\s*$", re.IGNORECASE)
_ABSOLUTE = re.compile(
    r"^\s*(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2}(?::\d{2})?)\s*(GMT|UTC|Z|[+-]\d{1,2}(?::?\d{2})?)?\s*$",
    re.IGNORECASE,
)


def parse_validity(text: str, accepted_at: datetime) -> datetime | None:
    """The UTC deadline of a ``validity`` text, or ``None`` when it cannot be read.

    ``2h`` / ``30m`` are relative to ``accepted_at``; ``2017-04-20 11:50:05 GMT``,
    ``…+8``, ``…-07:00`` are absolute; without a zone CE(S)T is assumed.
    """
    spec = _validity_spec(text)
    if spec is None:
        return None
    return accepted_at + spec if isinstance(spec, timedelta) else spec


@lru_cache(maxsize=4096)
def _validity_spec(text: str) -> timedelta | datetime | None:
    """A validity text as a relative offset or an absolute UTC time (cached: campaigns repeat it)."""
    match = _RELATIVE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        return timedelta(hours=amount) if unit == "h" else timedelta(minutes=amount)
    match = _ABSOLUTE.match(text)
    if not match:
        return None
    day, clock, zone = match.groups()
    if clock.count(":") == 1:
        clock += ":00"
    try:
        naive = datetime.fromisoformat(f"{day}T{clock.zfill(8)}")
    except ValueError:
        return None
    if zone is None:
        return naive.replace(tzinfo=_CET).astimezone(UTC)
    zone = zone.upper()
    if zone in {"GMT", "UTC", "Z"}:
        return naive.replace(tzinfo=UTC)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = (int(digits[:-2]), int(digits[-2:])) if len(digits) > 2 else (int(digits), 0)
    if hours > 14 or minutes > 59:
        return None
    return naive.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes))).astimezone(UTC)


# --- outcomes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """The decided fate of one accepted message."""

    status_code: int  # final: 1 rejected, 2 delivered, 3 failed
    error_code: int
    error_description: str
    channel: str | None
    operator: str
    accepted_delay: float  # simulated seconds from acceptance to the code-0 report
    final_delay: float  # simulated seconds from acceptance to the final report
    expires_at: datetime  # the validity deadline (UTC)


_DEFAULT_OPERATORS = {
    "31": "KPN", "32": "Proximus", "33": "Orange France", "34": "Movistar", "39": "TIM",
    "44": "Vodafone UK", "49": "Telekom.de", "1": "AT&T", "27": "Vodacom", "61": "Telstra",
}


class PrefixTable:
    """Longest-prefix lookup of numbers (keys compared without ``+``/``00``)."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._map = {_digits(k): v for k, v in mapping.items()}
        self._lengths = sorted({len(k) for k in self._map}, reverse=True)

    def get(self, number: str) -> Any:
        for k in self._lengths:
            value = self._map.get(number[:k])
            if value is not None:
                return value
        return None


@dataclass(frozen=True)
class Rules:
    """The outcome rules of a config, compiled once for fast per-message lookups."""

    base: dict[str, float]
    prefixes: PrefixTable  # number prefix -> rule dict (with its rates merged over base under "_rates")
    channels: dict[str, dict[str, Any]]  # lower-case channel -> rule dict
    operators: PrefixTable

    @classmethod
    def of(cls, config: GatewayConfig) -> Rules:
        base = {"delivered": config.delivered_rate, "failed": config.failed_rate, "rejected": config.rejected_rate}
        return cls(
            base=base,
            prefixes=PrefixTable({k: {**v, "_rates": {**base, **_rates(v)}} for k, v in config.prefix_rules.items()}),
            channels={k.lower(): dict(v) for k, v in config.channel_rules.items()},
            operators=PrefixTable({**_DEFAULT_OPERATORS, **dict(config.operators)}),
        )


def _words(key: str, n: int) -> tuple[int, ...]:
    """At least ``n`` pseudo-random 64-bit words derived from ``key`` alone (BLAKE2b, 8 per block).

    A hash instead of a ``random.Random(key)`` per message: seeding a Mersenne
    Twister costs ~20 µs, this ~1 µs, with the same property that a message's
    draws depend on its content and the seed only, not on arrival order.
    ``(word >> 11) * 2**-53`` is then a uniform float in [0, 1).
    """
    raw = key.encode()
    words = _WORDS.unpack(blake2b(raw, digest_size=64).digest())
    block = 1
    while len(words) < n:  # more than two channels tried: further blocks
        words += _WORDS.unpack(blake2b(raw + b"#%d" % block, digest_size=64).digest())
        block += 1
    return words


class OutcomeDrawer:
    """Draws outcomes for one config: :func:`decide_outcome`'s logic, with lookups cached.

    :meth:`draw` is :func:`decide_outcome` without the validity check and
    without building an :class:`Outcome`: the gateway's per-message hot path.

    Parameters
    ----------
    config : GatewayConfig
    rules : Rules, optional
        ``Rules.of(config)`` when omitted.
    """

    def __init__(self, config: GatewayConfig, rules: Rules | None = None) -> None:
        self.config = config
        self.rules = rules or Rules.of(config)
        self._seed = f"{config.seed}|"
        self._failed = tuple(config.failed_codes)
        self._rejected = tuple(config.rejected_codes)
        # Both prefix tables look at no more than the first ``_head`` digits of a number,
        # so (rule, operator, the rule's plans per channel list) is cached per such head.
        self._head = max([0, *self.rules.prefixes._lengths, *self.rules.operators._lengths])
        self._by_head: dict[str, tuple[dict[str, Any], str, dict[str | None, list[tuple]]]] = {}
        self._plans: dict[int, dict[str | None, list[tuple]]] = {}  # id(rule) -> channels -> plan

    def _lookup(self, head: str) -> tuple[dict[str, Any], str, dict[str | None, list[tuple]]]:
        rules = self.rules
        rule = rules.prefixes.get(head) or _NO_RULE
        operator = rule.get("operator") or rules.operators.get(head) or "Simulated Operator"
        if len(self._by_head) >= 65536:  # bounded: heads come from requests
            self._by_head.clear()
        self._by_head[head] = found = (rule, operator, self._plans.setdefault(id(rule), {}))
        return found

    def _plan(self, rule: dict[str, Any], plans: dict[str | None, list[tuple]], channels: str | None) -> list[tuple]:
        """Per channel tried: (name, delivered share, delivered+failed share, total, mean delay)."""
        rules, config = self.rules, self.config
        plan = []
        for channel in channels.split(",") if channels else [None]:
            chan_rule = rules.channels.get(channel.lower()) if channel else None
            rates = rule.get("_rates", rules.base)
            if chan_rule:
                rates = {**rates, **_rates(chan_rule)}
            else:
                chan_rule = {}
            delay = float(chan_rule.get("delay", rule.get("delay", config.delivery_delay)))
            total = (rates["delivered"] + rates["failed"] + rates["rejected"]) or 1.0
            plan.append((channel, rates["delivered"], rates["delivered"] + rates["failed"], total, delay))
        if len(plans) >= 4096:  # bounded: channel lists come from requests
            plans.clear()
        plans[channels] = plan
        return plan

    def draw(self, number: str, reference: str | None, body: str,
             channels: str | None) -> tuple[int, int, str | None, str, float, float]:
        """``(status_code, error_code, channel, operator, accepted_delay, final_delay)`` of a message.

        ``number`` without ``+``/``00``; ``channels`` comma-joined or ``None``.
        Delays are simulated seconds from acceptance, before any validity expiry.
        """
        head = number[:self._head]
        rule, operator, plans = self._by_head.get(head) or self._lookup(head)
        plan = plans.get(channels) or self._plan(rule, plans, channels)
        # 3 draws per channel tried (delay, outcome, error code), then 1 for the code-0 report;
        # (word >> 11) * 2**-53 is a uniform float in [0, 1)
        u = _words(f"{self._seed}{number}|{reference}|{body}|{channels}", 3 * len(plan) + 1)
        elapsed = 0.0
        j = 0
        for step in plan:
            channel, delivered, not_rejected, total, delay = step  # the channel tried last is reported
            if delay > 0:
                elapsed -= _log(1.0 - (u[j] >> 11) * _2_53) * delay  # exponential with mean ``delay``
            draw = (u[j + 1] >> 11) * _2_53 * total
            if draw < delivered:
                status, error = 2, 0
                break
            codes, status = (self._failed, 3) if draw < not_rejected else (self._rejected, 1)
            error = codes[int((u[j + 2] >> 11) * _2_53 * len(codes))]
            j += 3  # failed: fall back to the next channel at once (the last one's failure stands)
        if elapsed:
            accepted_delay = min(self.config.accepted_delay * (0.5 + (u[3 * len(plan)] >> 11) * _2_53), elapsed)
        else:
            accepted_delay = 0.0
        return status, error, channel, operator, accepted_delay, elapsed


def decide_outcome(record: dict[str, Any], accepted_at: datetime, config: GatewayConfig,
                   rules: Rules | None = None) -> Outcome:
    """Draw a message's outcome from the configured rules, deterministically.

    The draw is seeded by ``config.seed`` and the message's content (number,
    reference, body, channels), so the same message gets the same fate
    whatever order concurrent requests arrive in.

    Parameters
    ----------
    record : dict
        An accepted message (``number``, ``body``, ``reference``, ``channels``, ``validity``).
    accepted_at : datetime
        When the gateway accepted it (UTC).
    config : GatewayConfig
    rules : Rules, optional
        ``Rules.of(config)``, precompiled by the caller for speed.

    Returns
    -------
    Outcome
    """
    drawer = OutcomeDrawer(config, rules)
    status, error, channel, operator, accepted_delay, elapsed = drawer.draw(
        _digits(record["number"]), record.get("reference"), record["body"], record.get("channels") or None)
    deadline = expiry(record.get("validity"), accepted_at, config)
    if status == 2 and accepted_at + timedelta(seconds=elapsed) > deadline:
        status, error = 3, 39
        elapsed = max((deadline - accepted_at).total_seconds(), accepted_delay)
    return Outcome(status, error, DELIVERY_ERROR_CODES.get(error, "Unknown error"), channel, operator,
                   accepted_delay, elapsed, deadline)


def expiry(validity: str | None, accepted_at: datetime, config: GatewayConfig) -> datetime:
    """When a message stops being deliverable: its validity, capped at ``max_validity_hours``."""
    cap = accepted_at + timedelta(hours=config.max_validity_hours)
    deadline = parse_validity(validity or config.default_validity, accepted_at)
    return min(deadline or cap, cap)


def _rates(rule: dict[str, Any]) -> dict[str, float]:
    """The outcome shares a rule sets (``delivered_rate`` or short ``delivered``)."""
    out = {}
    for key, value in rule.items():
        name = key.removesuffix("_rate")
        if name in {"delivered", "failed", "rejected"}:
            out[name] = float(value)
    return out


class SimClock:
    """Accelerated time: a simulated delay of ``d`` seconds takes ``d / time_scale`` real seconds.

    Report timestamps are the acceptance time plus the simulated delay (so a
    campaign's latencies look real); the gateway pushes them, and the
    Transactions API shows them, once their real due time has come.
    """

    def __init__(self, time_scale: float = 1.0) -> None:
        self.scale = float(time_scale)

    @staticmethod
    def now() -> datetime:
        """The current (real) UTC time."""
        return datetime.now(UTC)

    def due(self, start: datetime, sim_seconds: float) -> datetime:
        """When (real time) something ``sim_seconds`` of simulated time after ``start`` happens."""
        return start + timedelta(seconds=sim_seconds / self.scale)
