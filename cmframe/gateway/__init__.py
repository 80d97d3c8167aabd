"""The embedded CM gateway: a loopback stand-in for ``gw.messaging.cm.com``.

It answers ``POST /v1.0/message`` as CM's JSON gateway does (every row of the
spec's response tables), keeps a SQLite *ledger* of every request and every
accepted message (committed before it answers), injects faults on demand,
decides a delivery outcome per message and pushes the status reports CM would,
and serves ``GET /v1.2/transactions/``.

One logic object (:class:`Gateway`, ``handle(request) -> Reply``) is served two
ways: over HTTP by uvicorn in a background thread (:func:`serve_gateway`, the
``cmframe gateway`` command) and in-process as an ``httpx.MockTransport``
handler (:class:`cmframe.testing.FakeGateway`).

>>> from cmframe.gateway import serve_gateway
>>> with serve_gateway(tokens=[TOKEN], faults=["ok", "drop_after"]) as gw:  # doctest: +SKIP
...     httpx.post(gw.message_url, json=request)
...     gw.ledger_frame()          # one row per accepted message

From the command line: ``cmframe gateway --port 8080 --token TOKEN --ledger
ledger.sqlite [--webhook URL] [--faults ok,500,drop_after] [--config options.json]``
(``cmframe gateway --help`` lists the flags; ``--config`` takes any option below as JSON).

Options
-------
Pass them as keywords to ``serve_gateway`` / ``FakeGateway`` or as a
:class:`GatewayConfig`.

Accounts and acceptance
    ``tokens`` (``None``)
        Valid product tokens; ``None`` accepts any non-empty token. A missing
        token is answered 400 ``Invalid product token.`` (errorCode 103), an
        unknown one 400 ``No account found for the given authentication`` (101).
        The token is read from ``X-CM-PRODUCTTOKEN`` or
        ``messages.authentication.productToken`` (JSON keys case-insensitive).
    ``ledger`` (``None``)
        SQLite file of the ledger; ``None`` uses a temporary file.
    ``max_msg`` (1000)
        More ``msg`` objects than this: 400, errorCode 203.
    ``balance`` (``None``)
        Trial balance in message parts; a request needing more than is left is
        refused whole: 400 ``Insufficient balance.`` (102).
    ``blacklist`` (empty)
        Numbers rejected per message with 402 ``Message has been blacklisted``
        (compared without ``+``/``00``).
    ``spam_words`` (empty)
        Case-insensitive substrings; a body containing one is rejected with 401
        ``Message has been spam filtered``.
    ``unroutable_prefixes`` (empty)
        A request with a number under one of these prefixes is refused whole:
        400 ``Message is unroutable.`` (999).

Faults (for reliability tests)
    ``faults`` (empty)
        A script: one action per ``POST /v1.0/message`` request, in arrival
        order (a sequence), or ``{request_number: action}`` (1-based). Requests
        past the script use the random rates below. Actions (strings, ints,
        :class:`Fault` or mappings of its fields):

        - ``"ok"``: normal processing.
        - ``500`` / ``"502"`` / ``"503"`` / ``"504"`` / ``"429"``: that status,
          nothing accepted; ``"429:2"`` / ``"503:0.5"`` set ``Retry-After``
          (429 and 503 default to 1 s; fractions are sent as e.g. ``0.5``).
          A 500 carries CM's ``{"details": "Unknown Error", "errorCode": 999}``.
        - ``"500_after"`` (any status + ``_after``): messages accepted and in
          the ledger, then that error is answered.
        - ``"drop_before"``: the connection is closed without an answer, nothing accepted.
        - ``"drop_after"``: messages accepted and committed, then the connection is
          closed without an answer (the ambiguous case).
        - ``"slow"`` / ``"slow:5"``: accepted, answered after ``slow_seconds`` (30)
          or 5 s: beyond a client's timeout.
        - ``"delay:0.5"``: answered normally after 0.5 s.
    ``error_rate`` / ``error_status`` (0, 500), ``throttle_rate`` (429),
    ``unavailable_rate`` (503), ``drop_before_rate``, ``drop_after_rate``
        Random faults per request, drawn from a generator seeded by ``seed``.
    ``retry_after`` (1.0)
        ``Retry-After`` seconds of random 429/503.
    ``latency`` (0), ``latency_jitter`` (0)
        Seconds added to every answer (fixed + uniform random). Delays are
        applied after the ledger commit, so a client timing out does not know
        whether its messages were accepted.
    ``seed`` (0)
        Seeds random faults and outcomes: same seed, same run.

Outcomes and status reports
    ``delivered_rate`` / ``failed_rate`` / ``rejected_rate`` (0.93 / 0.05 / 0.02)
        Shares of accepted messages per final status (normalised to sum 1).
    ``prefix_rules`` ({})
        ``{"0031": {"delivered_rate": ..., "failed_rate": ..., "rejected_rate": ...,
        "delay": seconds, "operator": name}}``; the longest matching prefix wins
        (``delivered``/``failed``/``rejected`` are accepted as short keys).
    ``channel_rules`` ({})
        The same per channel name (``{"WhatsApp": {"failed_rate": 0.5}}``). With
        ``allowedChannels: ["WhatsApp", "SMS"]`` a message failing on WhatsApp
        falls back to SMS at once; the ledger's ``channel`` is the last one tried.
    ``accepted_delay`` (1.0), ``delivery_delay`` (5.0)
        Simulated seconds to the code-0 report and mean (exponential) simulated
        seconds to the final report.
    ``default_validity`` (``"24h"``), ``max_validity_hours`` (72)
        A message whose delivery would come after its validity fails: code 3,
        errorCode 39 ``Message expired (validity period passed)``.
    ``failed_codes``, ``rejected_codes``
        Error codes (``cmframe.codes.DELIVERY_ERROR_CODES``) drawn for failures.
    ``operators`` ({})
        ``{prefix: operator name}`` on top of a small built-in table.
    ``time_scale`` (1.0)
        Simulated seconds per real second: ``3600`` makes an hour of delivery
        pass in a second. Report timestamps are acceptance time + simulated delay.

Delivery of status reports
    ``webhook`` (``None``)
        URL the reports are pushed to (no push when ``None``).
    ``report_format`` (``"json"``)
        ``"json"``: POST ``{"messages": {"msg": {"received", "to", "reference",
        "status": {"code", "errorCode", "errorDescription"}, "operator"}}}``
        (``msg`` a list when batched); ``"xml"``: POST ``<MESSAGES><MSG
        RECEIVED="…"><TO/><REFERENCE/><STATUS><CODE/><ERRORCODE/>
        <ERRORDESCRIPTION/></STATUS><OPERATOR/></MSG></MESSAGES>``; ``"get"``:
        GET with query ``RECEIVED, TO, REFERENCE, STATUS, ERRORCODE,
        ERRORDESCRIPTION, OPERATOR``; ``"form"``: the same fields as a form POST.
        Every message gets a code-0 report then its final one (1/2/3).
        ``received`` is ISO-8601 UTC (``2026-11-29T08:00:00.123Z``).
    ``report_batch`` (1)
        Reports per JSON/XML push.
    ``report_concurrency`` (2)
        Pushes in flight at once (each from its own thread).
    ``report_retries`` (8), ``report_backoff`` (0.2), ``report_timeout`` (5.0)
        Non-2xx or failed pushes are retried with exponential backoff
        (``backoff * 2**(attempt-1)`` real seconds) up to ``report_retries`` attempts.
    ``duplicate_rate`` (0), ``reorder_rate`` (0), ``reorder_window`` (2.0)
        Share of reports pushed twice, and of reports held back up to
        ``reorder_window`` real seconds (so a final report can arrive before the
        code-0 one), as CM's retries do.
    ``export_csv`` (``None``)
        Write the CSV export (``reports.EXPORT_COLUMNS``) there on close; also
        ``RunningGateway.export_csv(path)`` at any time.

``GET /v1.2/transactions/`` (``X-CM-PRODUCTTOKEN``; ``startdate``, ``enddate``,
``reference``, ``direction``, ``pagesize``, ``page``) answers ``status``,
``message``, ``summary``, ``pagination{currentPage, totalPages, pageSize}`` and
``result[]``; ``status`` 20 = delivered, 30 failed, 40 rejected, 11 accepted by
the operator, 10 accepted (codes other than 20 are this gateway's choice).
"""

from __future__ import annotations

from .config import Fault, GatewayConfig, parse_fault
from .core import Gateway, Reply
from .server import RunningGateway, main, make_app, serve_gateway

__all__ = ["serve_gateway", "GatewayConfig", "main", "Gateway", "Reply", "RunningGateway", "Fault",
           "parse_fault", "make_app"]
