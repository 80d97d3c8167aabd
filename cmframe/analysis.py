"""Campaign analysis: outcome counts, error codes and delivery latency per group.

Every function takes a frame from any stage of the data flow and returns a
plain frame, so results compose with pandas::

    plan ------> predicted parts and cost, validation errors
    results ---> + gateway outcomes, parts sent, gateway error codes
    campaign --> + delivery outcomes, status-report error codes, latency

A stage that has not run yet shows as ``<NA>`` (never as zero): a plan has no
``accepted`` count because nothing was sent, not because nothing was accepted.

Each row gets exactly one :func:`outcome`, in the order of :data:`OUTCOMES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from .codes import describe_error
from .exceptions import MissingColumnError, SpecError

__all__ = [
    "OUTCOMES",
    "OUTCOME_LABELS",
    "SUMMARY_COLUMNS",
    "ERRORS_COLUMNS",
    "stage",
    "outcome",
    "group_keys",
    "country",
    "summary",
    "errors",
    "latency",
    "attention",
]

#: Every outcome a row can have, best first: the order of stacked charts and tables.
OUTCOMES: tuple[str, ...] = (
    "delivered",  # final status report: delivered
    "accepted",  # accepted by the gateway; no status reports merged (yet)
    "pending",  # accepted; status reports merged but none final yet
    "planned",  # valid row of a plan that was not sent (yet)
    "failed",  # final status report: failed
    "rejected",  # rejected by the gateway, or by the operator (status report)
    "unknown",  # the request's outcome is unknown (timeout, dropped connection, 5xx)
    "not_sent",  # the campaign stopped before this row's chunk
    "invalid",  # failed local validation: never sent
)

#: Readable names of :data:`OUTCOMES` for legends and tables.
OUTCOME_LABELS: dict[str, str] = {
    "delivered": "delivered",
    "accepted": "accepted",
    "pending": "pending",
    "planned": "planned",
    "failed": "failed",
    "rejected": "rejected",
    "unknown": "unknown",
    "not_sent": "not sent",
    "invalid": "invalid",
}

#: Columns of :func:`summary` (``cost``/``predicted_cost`` only when ``prices`` is given).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "rows",
    "invalid",
    "valid",
    "not_sent",
    "rejected",
    "unknown",
    "accepted",
    "delivered",
    "failed",
    "pending",
    "accept_rate",
    "delivery_rate",
    "parts_estimate",
    "parts",
)

#: Columns of :func:`errors` after the group columns.
ERRORS_COLUMNS: tuple[str, ...] = (
    "source",
    "code",
    "description",
    "count",
    "share",
    "rate",
    "example",
)

# The spec's camelCase names are accepted as group keys too.
_ALIASES: dict[str, str] = {
    "customGrouping": "custom_grouping",
    "customGrouping1": "custom_grouping",
    "custom_grouping1": "custom_grouping",
    "customGrouping2": "custom_grouping2",
    "customGrouping3": "custom_grouping3",
    "allowedChannels": "channels",
}
_FINAL_DELIVERY = ("delivered", "failed", "rejected")


# -- stage and outcome ---------------------------------------------------------
def stage(df: pd.DataFrame) -> str:
    """Return how far along the data flow a frame is.

    Parameters
    ----------
    df : pandas.DataFrame
        A plan, result or campaign frame.

    Returns
    -------
    str
        ``"plan"`` (built), ``"results"`` (sent) or ``"campaign"`` (status reports merged).

    Raises
    ------
    SpecError
        When the frame is none of these (no ``error_code``, ``status`` or ``delivery_status``).
    """
    if not isinstance(df, pd.DataFrame):
        raise SpecError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if "delivery_status" in df.columns:
        return "campaign"
    if "status" in df.columns:
        return "results"
    if "error_code" in df.columns:
        return "plan"
    raise SpecError(
        "not a cmframe frame: expected a plan (error_code), results (status) "
        "or a campaign (delivery_status); build the recipients first with df.cm.build(...)"
    )


def _text(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df.columns:
        return pd.Series(pd.NA, index=df.index, dtype="string")
    return df[column].astype("string")


def outcome(df: pd.DataFrame) -> pd.Series:
    """Return the one outcome of every row, as a categorical over :data:`OUTCOMES`.

    A row the gateway left ``unknown`` takes the outcome of its status reports
    when there are some (they prove the gateway accepted it).

    Parameters
    ----------
    df : pandas.DataFrame
        A plan, result or campaign frame.

    Returns
    -------
    pandas.Series
        Categorical named ``"outcome"``, indexed like ``df``.
    """
    kind = stage(df)
    at = {name: i for i, name in enumerate(OUTCOMES)}
    if kind == "plan":
        codes = np.full(len(df), at["planned"], dtype=np.int8)
    else:
        # integer codes throughout: a million rows take milliseconds
        sent = _codes(df["status"], _SEND_ORDER)
        codes = np.where(sent >= 0, _SEND_LUT[np.maximum(sent, 0)], at["unknown"]).astype(np.int8)
        if kind == "campaign":
            delivery = _codes(df["delivery_status"], _DELIVERY_ORDER)  # -1: none / missing
            # a report of any kind proves an "unknown" request was accepted
            reached = (sent == 0) | ((sent == 2) & (delivery >= 0))
            final = (delivery >= 0) & (delivery < len(_FINAL_DELIVERY))
            codes = np.where(reached & final, _DELIVERY_LUT[np.maximum(delivery, 0)], codes)
            codes = np.where(reached & ~final, at["pending"], codes)
    # a plan error always wins: such rows were never sent
    if "error_code" in df.columns:
        codes = np.where(df["error_code"].notna().to_numpy(), at["invalid"], codes)
    return pd.Series(
        pd.Categorical.from_codes(codes.astype(np.int8), categories=list(OUTCOMES)),
        index=df.index,
        name="outcome",
    )


_SEND_ORDER = ("accepted", "rejected", "unknown", "not_sent", "invalid")
_SEND_LUT = np.array([OUTCOMES.index(s) for s in _SEND_ORDER], dtype=np.int8)
_DELIVERY_ORDER = (*_FINAL_DELIVERY, "accepted")
_DELIVERY_LUT = np.array([OUTCOMES.index(s) for s in _FINAL_DELIVERY] + [-1], dtype=np.int8)


def _codes(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Positions of ``values`` in ``categories`` (-1 for missing or other values)."""
    # factorize (hashing once) then map the few distinct values: the fast path on 10⁶ rows
    codes, uniques = pd.factorize(values.astype("string"))
    position = {name: i for i, name in enumerate(categories)}
    lut = np.array([position.get(u, -1) for u in uniques] + [-1], dtype=np.int64)
    return lut[codes]  # code -1 (missing) picks the trailing -1


# -- group keys ------------------------------------------------------------------
def _normalise_by(by: Any) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        by = [by]
    elif not isinstance(by, Iterable):
        raise SpecError(f"by= must be a column name or a list of names, got {by!r}")
    return [_ALIASES.get(str(b), str(b)) for b in by]


@lru_cache(maxsize=1)
def _calling_codes() -> tuple[dict[str, str], frozenset[str]]:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    main = {str(cc): regions[0] for cc, regions in COUNTRY_CODE_TO_REGION_CODE.items()}
    shared = frozenset(
        str(cc) for cc, regions in COUNTRY_CODE_TO_REGION_CODE.items() if len(regions) > 1
    )
    return main, shared


@lru_cache(maxsize=65536)
def _region_of(digits: str) -> str | None:
    import phonenumbers

    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        return None


def country(numbers: pd.Series) -> pd.Series:
    """Return the ISO region (``"NL"``) of normalised ``00<cc>…`` numbers.

    Country calling codes are prefix-free, so three vectorised prefix look-ups
    find the code; only codes shared by several regions (``1``, ``7``, ``44``…)
    ask ``phonenumbers``, once per distinct calling code + 6 national digits.
    """
    main, shared = _calling_codes()
    digits = numbers.astype("string").str.removeprefix("00")
    code = pd.Series(pd.NA, index=numbers.index, dtype="string")
    for n in (1, 2, 3):
        prefix = digits.str.slice(0, n)
        hit = code.isna() & prefix.isin(list(main)).fillna(False)
        code = code.mask(hit, prefix)
    result = code.map(main).astype("string")
    ambiguous = code.isin(list(shared)).fillna(False)
    if ambiguous.any():
        # within a calling code shared by several regions the leading national digits
        # decide (NANP area code + exchange, UK Crown-dependency blocks…): ask
        # phonenumbers once per (code + 6 digits), about one representative number
        numbers_ = digits[ambiguous]
        width = code[ambiguous].str.len()
        key = numbers_.str.slice(0, 7)
        for n in (2, 3):
            key = key.mask(width == n, numbers_.str.slice(0, n + 6))
        representative = numbers_.groupby(key.to_numpy(), sort=False).first()
        regions = {k: _region_of(d) for k, d in representative.items()}
        result = result.mask(ambiguous, key.map(regions).astype("string"))
    return result.rename("country")


def _key(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name]
    if name == "country" and "number" in df.columns:
        return country(df["number"])
    if name == "channel" and "channels" in df.columns:
        first = df["channels"].astype("string").str.replace(r",.*", "", regex=True)
        return first.fillna("(default)").rename("channel")
    if name == "outcome":
        return outcome(df)
    raise MissingColumnError(
        f"cannot group by {name!r}: the frame has no such column "
        f"(columns: {', '.join(map(str, df.columns))})"
    )


def group_keys(df: pd.DataFrame, by: Any) -> list[pd.Series]:
    """Return the grouping Series for ``by`` (column names, with derived keys).

    Besides any column, ``by`` accepts the spec's camelCase names
    (``customGrouping2``), ``"country"`` (derived from ``number`` when the
    frame has no such column), ``"channel"`` (the first of ``channels``) and
    ``"outcome"``.
    """
    return [_key(df, name).rename(name) for name in _normalise_by(by)]


def _grouped(frame: pd.DataFrame, keys: list[pd.Series]):
    if not keys:
        return frame.groupby(np.zeros(len(frame), dtype=np.int8), sort=False)
    return frame.groupby(keys, sort=True, dropna=False, observed=True)


def _overall_index(result: pd.DataFrame, *, zero: Sequence[str] = ()) -> pd.DataFrame:
    if result.empty:  # an empty frame still has an overall row: zero counts
        result = result.reindex([0])
        result[list(zero)] = 0
    result.index = pd.Index(["all"] * len(result), name=None)
    return result


# -- prices ------------------------------------------------------------------------
def _price_per_row(df: pd.DataFrame, prices: Mapping[str, float] | pd.Series) -> pd.Series:
    table = pd.Series(prices, dtype="float64") if not isinstance(prices, pd.Series) else prices
    table = table.astype("float64")
    default = table.get("*", np.nan)
    regions = _key(df, "country").astype("string")
    per_row = regions.map(table.drop("*", errors="ignore")).astype("float64")
    return per_row.fillna(default)


# -- summary -----------------------------------------------------------------------
def summary(
    df: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    prices: Mapping[str, float] | pd.Series | None = None,
) -> pd.DataFrame:
    """Count outcomes per group.

    Parameters
    ----------
    df : pandas.DataFrame
        A plan, result or campaign frame.
    by : str or list of str, optional
        Group keys: any column (``reference``, ``custom_grouping``…,
        ``encoding``, ``operator``), the spec's camelCase names, or the
        derived ``"country"``, ``"channel"`` and ``"outcome"``. ``None``
        gives one row labelled ``"all"``.
    prices : mapping or Series, optional
        Price per message part by ISO region (``{"NL": 0.07, "*": 0.09}``;
        ``"*"`` prices the regions not listed). Adds ``predicted_cost`` (valid
        rows × ``parts_estimate``) and, once sent, ``cost`` (accepted rows ×
        ``parts``). A row with no price makes its group's cost ``<NA>``.

    Returns
    -------
    pandas.DataFrame
        Indexed by the group keys, with :data:`SUMMARY_COLUMNS`:
        ``rows``, ``invalid``, ``valid``; once sent ``not_sent``, ``rejected``
        (by the gateway or the operator), ``unknown``, ``accepted`` (by the
        gateway, whatever followed) and ``parts`` (the gateway's count; the
        estimate for rows whose acceptance only status reports prove); once
        status reports are merged ``delivered``, ``failed``, ``pending``. ``accept_rate`` is
        accepted over valid rows, ``delivery_rate`` delivered over accepted.
        Columns of stages not yet run are ``<NA>``.
    """
    kind = stage(df)
    out = outcome(df)
    sent = kind != "plan"
    merged = kind == "campaign"
    flags = pd.DataFrame(
        {
            "rows": np.ones(len(df), dtype=np.int64),
            "invalid": (out == "invalid").to_numpy(),
            "not_sent": (out == "not_sent").to_numpy(),
            "rejected": (out == "rejected").to_numpy(),
            "unknown": (out == "unknown").to_numpy(),
            "accepted": out.isin(["accepted", "pending", "delivered", "failed"]).to_numpy(),
            "delivered": (out == "delivered").to_numpy(),
            "failed": (out == "failed").to_numpy(),
            "pending": (out == "pending").to_numpy(),
        },
        index=df.index,
    )
    if merged:
        # an operator rejection (status report) still means the gateway accepted the row
        status = _text(df, "status").fillna("unknown")
        op_rejected = (out == "rejected") & (status != "rejected")
        flags["accepted"] = flags["accepted"] | op_rejected.to_numpy()
    valid = ~flags["invalid"]
    estimate = (
        pd.to_numeric(df["parts_estimate"], errors="coerce").astype("Float64")
        if "parts_estimate" in df.columns
        else pd.Series(pd.NA, index=df.index, dtype="Float64")
    )
    flags["parts_estimate"] = estimate.where(valid, 0)
    parts = (
        pd.to_numeric(df["parts"], errors="coerce").astype("Float64")
        if "parts" in df.columns
        else pd.Series(0, index=df.index, dtype="Float64")
    )
    if sent:
        # rows whose acceptance is known only from status reports ("unknown" at send
        # time) have no gateway part count: their estimate stands in
        status = _text(df, "status")
        parts = parts.mask((status != "accepted").fillna(True) & parts.fillna(0).eq(0), estimate)
    flags["parts"] = parts.where(flags["accepted"], 0).fillna(0)
    if prices is not None:
        price = _price_per_row(df, prices)
        flags["predicted_cost"] = (estimate * price).where(valid, 0)
        flags["cost"] = (parts.fillna(0) * price).where(flags["accepted"], 0)

    keys = group_keys(df, by)
    grouped = _grouped(flags, keys)
    result = grouped.sum(min_count=0)
    if prices is not None:
        # NA propagates: a group with an unpriced row has no honest total
        # (GroupBy.sum(skipna=False) is pandas >= 3 only: mask the groups with a gap)
        cost_cols = ["predicted_cost", "cost"]
        costs = grouped[cost_cols].sum(min_count=1)
        gaps = _grouped(flags[cost_cols].isna(), keys).any()
        result[cost_cols] = costs.mask(gaps.reindex(costs.index).to_numpy())
    if not by:
        result = _overall_index(result, zero=list(flags.columns))

    counts = ["rows", "invalid", "not_sent", "rejected", "unknown", "accepted",
              "delivered", "failed", "pending"]  # fmt: skip
    result[counts] = result[counts].astype("Int64")
    result["valid"] = result["rows"] - result["invalid"]
    result["parts_estimate"] = result["parts_estimate"].round().astype("Int64")
    result["parts"] = result["parts"].round().astype("Int64")
    na = pd.NA
    if not sent:
        for col in ("not_sent", "rejected", "unknown", "accepted", "parts"):
            result[col] = pd.array([na] * len(result), dtype="Int64")
    if not merged:
        for col in ("delivered", "failed", "pending"):
            result[col] = pd.array([na] * len(result), dtype="Int64")
    result = add_rates(result)
    columns = list(SUMMARY_COLUMNS)
    if prices is not None:
        result["predicted_cost"] = result["predicted_cost"].astype("Float64")
        result["cost"] = result["cost"].astype("Float64")
        if not sent:
            result["cost"] = pd.array([na] * len(result), dtype="Float64")
        columns += ["predicted_cost", "cost"]
    return result[columns]


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    num = num.astype("Float64")
    den = den.astype("Float64")
    return (num / den.where(den > 0)).astype("Float64")


# -- errors ------------------------------------------------------------------------
def errors(df: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Count error codes per group, with the spec's descriptions.

    Three sources of codes, each described from :mod:`cmframe.codes`:
    ``"validation"`` (the plan's ``error_code``), ``"gateway"`` (a row's
    ``message_error_code``, or the request's ``request_error_code`` when the
    whole request was refused) and ``"delivery"`` (the status reports'
    ``delivery_error_code``, code 0 "No error" excluded).

    Parameters
    ----------
    df : pandas.DataFrame
        A plan, result or campaign frame.
    by : str or list of str, optional
        Group keys, as for :func:`summary`.

    Returns
    -------
    pandas.DataFrame
        One row per (group, source, code), most frequent first within a
        group: the group columns, then :data:`ERRORS_COLUMNS` — ``count``,
        ``share`` of the group's errors, ``rate`` over the group's rows, and
        the most frequent per-row ``example`` text (e.g. the field a
        validation error names).
    """
    stage(df)
    keys = group_keys(df, by)
    names = [k.name for k in keys]
    pieces: list[pd.DataFrame] = []

    def add(source: str, code: pd.Series, text: pd.Series, mask: pd.Series) -> None:
        mask = mask.fillna(False).astype(bool).to_numpy()
        if not mask.any():
            return
        part = pd.DataFrame(
            {k.name: k.to_numpy()[mask] for k in keys}, index=pd.RangeIndex(int(mask.sum()))
        )
        part["source"] = source
        part["code"] = pd.to_numeric(code[mask], errors="coerce").astype("Int64").to_numpy()
        example = text[mask].astype("string").str.strip()
        part["example"] = example.mask(example == "").to_numpy()
        part["_one"] = 1
        pieces.append(part)

    if "error_code" in df.columns:
        code = df["error_code"]
        add("validation", code, _text(df, "error"), code.notna())
    if "message_error_code" in df.columns or "request_error_code" in df.columns:
        msg_code = (
            pd.to_numeric(df["message_error_code"], errors="coerce").astype("Int64")
            if "message_error_code" in df.columns
            else pd.Series(pd.NA, index=df.index, dtype="Int64")
        )
        req_code = (
            pd.to_numeric(df["request_error_code"], errors="coerce").astype("Int64")
            if "request_error_code" in df.columns
            else pd.Series(pd.NA, index=df.index, dtype="Int64")
        )
        status = _text(df, "status")
        # a request-level refusal explains rejected/not-sent rows without a message code
        refused = status.isin(["rejected", "not_sent", "unknown"]) & msg_code.isna()
        refused &= req_code.notna() & (req_code != 0) & (req_code != 201)
        code = msg_code.mask(refused, req_code)
        text = _text(df, "message_details").mask(refused, _text(df, "request_details"))
        plan_ok = (
            df["error_code"].isna() if "error_code" in df.columns else pd.Series(True, df.index)
        )
        add("gateway", code, text, code.notna() & (code != 0) & plan_ok)
    if "delivery_error_code" in df.columns:
        code = pd.to_numeric(df["delivery_error_code"], errors="coerce").astype("Int64")
        add("delivery", code, _text(df, "delivery_error"), code.notna() & (code != 0))

    columns = [*names, *ERRORS_COLUMNS]
    if not pieces:
        empty = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
        return empty.astype({"code": "Int64", "count": "Int64", "share": "Float64",
                             "rate": "Float64", "source": "string",
                             "description": "string", "example": "string"})  # fmt: skip
    long = pd.concat(pieces, ignore_index=True)
    group_cols = [*names, "source", "code"]
    counted = (
        long.groupby(group_cols, dropna=False, sort=False, observed=True)
        .agg(count=("_one", "size"), example=("example", _most_frequent))
        .reset_index()
    )
    counted["description"] = [
        describe_error(None if pd.isna(c) else c, kind="delivery" if s == "delivery" else "gateway")
        for s, c in zip(counted["source"], counted["code"], strict=True)
    ]
    # per group: share of its errors, rate over its rows
    if names:
        rows = pd.DataFrame({k.name: k.to_numpy() for k in keys})
        sizes = rows.groupby(names, dropna=False, observed=True).size().rename("_rows")
        counted = counted.join(sizes, on=names)
    else:
        counted["_rows"] = len(df)
    return finish_error_counts(counted, names)


def add_rates(summary_frame: pd.DataFrame) -> pd.DataFrame:
    """Set ``accept_rate`` and ``delivery_rate`` of a summary from its counts.

    The one place these rates are defined; a summary added up over partitions
    (Dask) gets its rates here too, after the counts are summed.
    """
    out = summary_frame.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["accept_rate"] = _ratio(out["accepted"], out["valid"])
        out["delivery_rate"] = _ratio(out["delivered"], out["accepted"])
    return out


def finish_error_counts(counted: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Shares, rates, order and dtypes of error counts per (group, source, code).

    ``counted`` holds the group columns ``names``, ``source``, ``code``,
    ``count``, ``example``, ``description`` and ``_rows`` (the group's row
    count). The one place these rules live; Dask calls it after adding up
    per-partition counts.
    """
    if names:
        total = counted.groupby(names, dropna=False, observed=True)["count"].transform("sum")
    else:
        total = counted["count"].sum()
    counted = counted.assign(
        share=(counted["count"] / total).astype("Float64"),
        rate=(counted["count"] / counted["_rows"]).astype("Float64"),
    )
    counted = counted.sort_values(
        [*names, "count", "source", "code"],
        ascending=[True] * len(names) + [False, True, True],
        kind="stable",
    )
    counted = counted.astype(
        {"count": "Int64", "code": "Int64", "source": "string",
         "description": "string", "example": "string"}  # fmt: skip
    )
    return counted[[*names, *ERRORS_COLUMNS]].reset_index(drop=True)


def _most_frequent(values: pd.Series) -> Any:
    values = values.dropna()
    if values.empty:
        return pd.NA
    return values.value_counts(sort=True).index[0]


# -- latency -----------------------------------------------------------------------
def _latency_seconds(df: pd.DataFrame) -> pd.Series:
    if "latency" in df.columns:
        lat = df["latency"]
    elif {"final_report_at", "sent_at"} <= set(df.columns):
        lat = pd.to_datetime(df["final_report_at"], utc=True) - pd.to_datetime(
            df["sent_at"], utc=True
        )
    else:
        return pd.Series(np.nan, index=df.index, dtype="float64")
    if pd.api.types.is_timedelta64_dtype(lat):
        return lat.dt.total_seconds().astype("float64")
    return pd.to_numeric(lat, errors="coerce").astype("float64")


def latency(
    df: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    quantiles: Sequence[float] = (0.5, 0.9, 0.99),
    outcomes: Sequence[str] | None = ("delivered",),
) -> pd.DataFrame:
    """Delivery-latency quantiles per group (final status report minus ``sent_at``).

    Parameters
    ----------
    df : pandas.DataFrame
        A campaign frame (``latency`` from ``merge_status``). Earlier stages
        give ``count`` 0 and ``NaT`` everywhere: nothing was measured yet.
    by : str or list of str, optional
        Group keys, as for :func:`summary`.
    quantiles : sequence of float
        Quantiles to report, as columns ``p50``, ``p90``, ``p99``…
    outcomes : sequence of str or None
        Only rows with these :func:`outcome` values (default delivered only);
        ``None`` for every row with a latency.

    Returns
    -------
    pandas.DataFrame
        Indexed by group: ``count``, ``mean``, ``min``, the quantiles and
        ``max``, as Timedeltas.
    """
    stage(df)
    seconds = _latency_seconds(df)
    if outcomes is not None:
        seconds = seconds.where(outcome(df).isin(list(outcomes)).to_numpy())
    frame = pd.DataFrame({"s": seconds.to_numpy()}, index=df.index)
    grouped = _grouped(frame, group_keys(df, by))["s"]
    qnames = [_qname(q) for q in quantiles]
    result = pd.DataFrame(
        {"count": grouped.count(), "mean": grouped.mean(), "min": grouped.min()}
    )
    for q, name in zip(quantiles, qnames, strict=True):
        result[name] = grouped.quantile(q)
    result["max"] = grouped.max()
    if not by:
        result = _overall_index(result, zero=["count"])
    result["count"] = result["count"].astype("Int64")
    for col in ["mean", "min", *qnames, "max"]:
        result[col] = pd.to_timedelta(result[col].astype("float64"), unit="s")
    return result


def _qname(q: float) -> str:
    if not 0 <= q <= 1:
        raise SpecError(f"quantiles must be between 0 and 1, got {q!r}")
    text = f"{q * 100:g}".replace(".", "_")
    return f"p{text}"


# -- rows needing attention ----------------------------------------------------------
def attention(df: pd.DataFrame, outcomes: Sequence[str] = ("invalid", "rejected", "unknown",
                                                           "not_sent", "failed")) -> pd.DataFrame:  # fmt: skip
    """Return the rows that need a decision, with their outcome and reason.

    Parameters
    ----------
    df : pandas.DataFrame
        A plan, result or campaign frame.
    outcomes : sequence of str
        Which :func:`outcome` values need attention.

    Returns
    -------
    pandas.DataFrame
        The matching rows (original index), with ``outcome`` and ``reason``
        (the most specific error text available) in front of the frame's
        identifying columns.
    """
    out = outcome(df)
    mask = out.isin(list(outcomes)).to_numpy()
    rows = df.loc[mask]
    reason = pd.Series(pd.NA, index=rows.index, dtype="string")
    for column in ("error", "delivery_error", "message_details", "request_details"):
        if column in rows.columns:
            reason = reason.fillna(rows[column].astype("string"))
    unknown = out[mask] == "unknown"
    reason = reason.mask(unknown.to_numpy() & reason.isna().to_numpy(),
                         "outcome of the request unknown: reconcile with status reports")
    front = pd.DataFrame({"outcome": out[mask].astype("string"), "reason": reason})
    keep = [c for c in ("to", "number", "reference", "custom_grouping", "status",
                        "error_code", "message_error_code", "delivery_status",
                        "delivery_error_code", "chunk") if c in rows.columns]  # fmt: skip
    return pd.concat([front, rows[keep]], axis=1)
