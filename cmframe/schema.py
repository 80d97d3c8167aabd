"""Column names that other tools rely on: a contract, change none of them.

Each stage adds columns to the frame it receives and keeps every column it was
given, so a frame's columns tell how far along the data flow it is::

    recipients --build--> plan --send--> results --merge_status--> campaign
"""

from __future__ import annotations

__all__ = [
    "PLAN_COLUMNS",
    "LAYOUT_COLUMNS",
    "RESULT_COLUMNS",
    "SEND_STATUSES",
    "REPORT_COLUMNS",
    "REPORT_STATUSES",
    "DELIVERY_COLUMNS",
    "DELIVERY_STATUSES",
]

#: Added by ``build`` (one row per recipient, the caller's index and columns kept).
PLAN_COLUMNS: tuple[str, ...] = (
    "number",  # normalised "00<cc><national>" or <NA> when invalid
    "sender",  # the msg "from"
    "body",  # rendered body text
    "body_type",  # "auto" / "text" / "binary" or <NA> (absent in the request)
    "channels",  # allowedChannels joined by "," in fallback order, or <NA>
    "reference",
    "custom_grouping",
    "custom_grouping2",
    "custom_grouping3",
    "validity",  # in gateway syntax: "2h", "30m" or "YYYY-MM-DD HH:MM:SS+HH:MM"
    "min_parts",
    "max_parts",
    "dcs",
    "rich_content",  # the richContent object as compact JSON text, or <NA>
    "encoding",  # "gsm7" / "ucs2"
    "body_length",  # septets (gsm7) or UTF-16 code units (ucs2)
    "parts_estimate",
    "ucs2_chars",  # characters that forced UCS-2
    "duplicate",  # bool: same number (and same content) as an earlier row
    "error_code",  # Int64: 301/302/303/304/305 or <NA> when the row is valid
    "error",  # human reason naming the field, or <NA>
)

#: Where each valid row goes in the requests (``cmframe.build.layout``).
LAYOUT_COLUMNS: tuple[str, ...] = ("chunk", "msg_index", "to_index")

#: Added by ``send`` / ``read_journal``.
RESULT_COLUMNS: tuple[str, ...] = (
    "status",  # one of SEND_STATUSES
    "parts",
    "message_error_code",
    "message_details",
    "http_status",
    "request_error_code",
    "request_details",
    "chunk",
    "sent_at",  # UTC timestamp the chunk's POST was answered (or attempted)
)
SEND_STATUSES: tuple[str, ...] = ("accepted", "rejected", "unknown", "not_sent", "invalid")

#: Columns of the frame ``read_status_reports`` returns.
REPORT_COLUMNS: tuple[str, ...] = (
    "to",
    "reference",
    "status_code",
    "status",
    "error_code",
    "error_description",
    "operator",
    "received_at",
    "source",
)
REPORT_STATUSES: tuple[str, ...] = ("accepted", "rejected", "delivered", "failed")

#: Added by ``merge_status``.
DELIVERY_COLUMNS: tuple[str, ...] = (
    "delivery_status",
    "delivery_error_code",
    "delivery_error",
    "first_report_at",
    "final_report_at",
    "latency",
    "operator",
    "reports_seen",
)
DELIVERY_STATUSES: tuple[str, ...] = ("delivered", "failed", "rejected", "accepted", "none")
