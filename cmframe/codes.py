"""Code tables of the CM JSON gateway and its status reports.

One place for every code and text the spec defines, shared by the build-time
validation, the embedded gateway, the sender and the analysis.
"""

from __future__ import annotations

__all__ = [
    "ERROR_CODES",
    "REQUEST_ERROR_CODES",
    "MESSAGE_ERROR_CODES",
    "DETAILS",
    "MESSAGE_DETAILS",
    "STATUS_CODES",
    "FINAL_STATUS_CODES",
    "DELIVERY_ERROR_CODES",
    "describe_error",
]

#: "JSON POST Error codes" table of the shared-features page.
ERROR_CODES: dict[int, str] = {
    0: "Ok",
    999: "Unknown error, please contact CM support",
    101: "Authentication of the request failed",
    102: "The account using this authentication has insufficient balance",
    103: "The product token is incorrect",
    201: "This request has one or more errors in its messages. Some or all messages have not been sent. See MSGs for details",
    202: "This request is malformed, please confirm the JSON and that the correct data types are used",
    203: "The request's MSG array is incorrect",
    301: "This MSG has an invalid From field (per msg)",
    302: "This MSG has an invalid To field (per msg)",
    303: "This MSG has an invalid Phone Number in the To field (per msg,)",
    304: "This MSG has an invalid Body field (per msg)",
    305: "This MSG has an invalid field. Please confirm with the documentation (per msg)",
    401: "Message has been spam filtered",
    402: "Message has been blacklisted",
    403: "Message has been rejected",
    500: "An internal error has occurred",
}

#: Codes with which the gateway refuses a whole request and creates no message:
#: sending stops (999 and 500 are not among them: the outcome is then unknown).
REQUEST_ERROR_CODES: frozenset[int] = frozenset({101, 102, 103, 202, 203})

#: Codes that reject one message of a request.
MESSAGE_ERROR_CODES: frozenset[int] = frozenset({301, 302, 303, 304, 305, 401, 402, 403})

#: Request-level ``details`` texts of the "JSON POST responses" table.
DETAILS: dict[str, str] = {
    "unknown": "Unknown Error",
    "no_account": "No account found for the given authentication",
    "balance": "Insufficient balance.",
    "unroutable": "Message is unroutable.",
    "invalid_token": "Invalid product token.",
    "no_msg": "A MESSAGES object requires at least one MSG object",
    "invalid_json": "Invalid JSON",
    "created": "Created {n} message(s)",
}

#: Per-message ``messageDetails`` texts of the same table.
MESSAGE_DETAILS: dict[str, str] = {
    "no_from": "No FROM field found in a MSG object.",
    "empty_number": "Empty mobilenumber field, MT ignored",
    "not_a_number": "Rejected: Gsm '{msisdn}' is not a number.",
    "not_array": "{obj} object is an invalid type, must be an array",
    "no_body": "No body field was found",
    "no_content": "A body without content was found",
}

#: Status-report status codes (``cm-api-facts.md``).
STATUS_CODES: dict[int, str] = {
    0: "accepted",
    1: "rejected",
    2: "delivered",
    3: "failed",
}

#: Codes after which no further report changes the outcome.
FINAL_STATUS_CODES: frozenset[int] = frozenset({1, 2, 3})

#: Error codes carried by status reports, with descriptions (the gateway uses these).
DELIVERY_ERROR_CODES: dict[int, str] = {
    0: "No error",
    1: "Unknown subscriber",
    5: "Subscriber absent",
    6: "Subscriber absent (call barred)",
    9: "Illegal subscriber",
    11: "Teleservice not provisioned",
    13: "Call barred",
    31: "Subscriber busy for MT SMS",
    34: "System failure",
    36: "Unknown subscriber (number ported or invalid)",
    39: "Message expired (validity period passed)",
    44: "Number blocked by operator",
    48: "Channel not available, fell back",
    107: "Insufficient balance (prepaid)",
    204: "Rejected by operator",
}


def describe_error(code: int | None, *, kind: str = "gateway") -> str | None:
    """Return the spec's description of an error code.

    Parameters
    ----------
    code : int or None
        The code.
    kind : {"gateway", "delivery"}
        ``"gateway"`` for the JSON POST table, ``"delivery"`` for status-report codes.

    Returns
    -------
    str or None
        The description, or ``None`` when the code is missing or unknown.
    """
    if code is None:
        return None
    try:
        code = int(code)
    except (TypeError, ValueError):
        return None
    table = ERROR_CODES if kind == "gateway" else DELIVERY_ERROR_CODES
    return table.get(code)
