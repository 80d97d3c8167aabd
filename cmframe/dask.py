"""The ``cm`` accessor on Dask DataFrames: the same stages, partition by partition.

``import cmframe`` registers ``ddf.cm`` when Dask is installed (extra ``dask``)::

    import dask.dataframe as dd
    recipients = dd.read_parquet("recipients/*.parquet")
    plan = recipients.cm.build(to="phone", body="Hi {first_name}", sender="Shop")
    results = plan.cm.send(url=..., journal="spring.cmjournal.d")     # from the client
    reports = cmframe.read_status_reports("reports/*.csv", engine="dask")
    campaign = results.cm.merge_status(reports)                        # shuffled join
    campaign.cm.summary(by="customGrouping")                           # a pandas frame

Every method runs the plain ``DataFrame -> DataFrame`` function of the pandas
stage on each partition (``map_partitions``, with ``meta`` from running that
same function on the empty meta frame), so there is no second implementation
of any rule. What cannot be partition-wise is said where it happens:

* ``merge_status`` shuffles results and reports on a hash of the join key
  (reference, normalised number) so that every row meets all its reports in
  one partition, then runs :func:`cmframe.reports.merge_status` per partition;
* ``summary``/``errors`` run the pandas function per partition and add up the
  counts (a tree reduction); rates and shares are recomputed after the sum;
* ``send`` never runs inside the task graph (a task may be re-run; a message
  must not be): the client computes one partition at a time and sends it with
  :func:`cmframe.send.send` through its own journal file in a journal folder,
  so resume and exactly-once hold as in pandas.
* ``build`` marks ``duplicate`` recipients within a partition (a global check
  would need the whole column on one machine).
"""

from __future__ import annotations

import datetime as dt
import glob as _glob
import json
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .exceptions import CMFrameError, JournalMismatch, SpecError

try:
    import dask
    import dask.dataframe as dd
except ImportError as exc:  # raised to ``import cmframe`` (which skips it) and engine="dask"
    raise ImportError("cmframe on Dask needs the extra: pip install 'cmframe[dask]'") from exc

if TYPE_CHECKING:  # the stage modules are imported on use: ``import cmframe`` stays quick
    from .reports import MergeResult, ReadResult

__all__ = [
    "DaskCMAccessor",
    "build",
    "send",
    "read_status_reports",
    "merge_status",
    "summary",
    "errors",
    "JOURNAL_MANIFEST",
]

#: The file in a Dask journal folder that records how many partitions were sent.
JOURNAL_MANIFEST = "cmframe-partitions.json"

_KEY = "_cm_join_key"  # the shuffle column merge_status adds and drops again
_RATES = ("accept_rate", "delivery_rate")


# --------------------------------------------------------------------------- helpers
def _require_dask(obj: Any, what: str) -> dd.DataFrame:
    if not isinstance(obj, dd.DataFrame):
        raise SpecError(f"{what} needs a Dask DataFrame, not {type(obj).__name__}")
    return obj


def _meta_of(fn: Callable[..., pd.DataFrame], ddf: dd.DataFrame, *args: Any, **kwargs: Any) -> pd.DataFrame:
    """The empty frame ``fn`` returns: run on the empty meta frame, else on Dask's tiny sample."""
    try:
        out = fn(ddf._meta, *args, **kwargs)
    except CMFrameError:
        raise  # the caller's mistake (a missing column, a bad option): say it now
    except Exception:  # some stages cannot run on zero rows; a fake row or two can
        out = fn(ddf._meta_nonempty, *args, **kwargs)
    return out.iloc[:0]


# --------------------------------------------------------------------------- build
def build(ddf: dd.DataFrame, **spec: Any) -> dd.DataFrame:
    """Build a plan partition-wise with :func:`cmframe.build.build`.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The recipients.
    **spec
        As for :func:`cmframe.build.build`: constants and templates over
        columns (``"Hi {first_name}"``). A pandas Series is refused (it cannot
        be lined up with partitions): make it a column and use a template.
        ``now`` is fixed once on the client so that every partition checks
        validity against the same time.

    Returns
    -------
    dask.dataframe.DataFrame
        The plan, lazily; ``duplicate`` (and ``duplicates="drop"``/``"error"``)
        applies within a partition.
    """
    _require_dask(ddf, "build")
    from .build import build as plain_build

    for name, value in spec.items():
        if isinstance(value, pd.Series | pd.Index | np.ndarray) or isinstance(value, dd.Series):
            raise SpecError(
                f"{name}: a Series cannot be lined up with Dask partitions; "
                f"add it as a column and use a template such as '{{{name}}}'"
            )
    spec.setdefault("now", dt.datetime.now(dt.UTC))
    meta = _meta_of(plain_build, ddf, **spec)
    return ddf.map_partitions(plain_build, **spec, meta=meta)


# --------------------------------------------------------------------------- send
def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / JOURNAL_MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text())


def send(
    plan: dd.DataFrame,
    url: str | None = None,
    token: Any = None,
    journal: str | os.PathLike | None = None,
    **kwargs: Any,
) -> dd.DataFrame:
    """Send a Dask plan from the client, one partition after another.

    Each partition is computed on the cluster, brought to the client and sent
    with :func:`cmframe.send.send` through its own journal file
    ``part-NNNNN.cmjournal`` in the ``journal`` folder. A second call with the
    same folder resumes: finished partitions send nothing, an interrupted one
    resumes from its journal, so no message is sent twice.

    Parameters
    ----------
    plan : dask.dataframe.DataFrame
        A plan from ``ddf.cm.build(...)``. Its partitions must come out the
        same on every run (the same files, the same build) to resume.
    url, token
        As for :func:`cmframe.send.send`; the token is resolved once, here.
    journal : str or Path
        A folder (created when missing) for the partitions' journals. Required:
        the results are read back from it, partition by partition.
    **kwargs
        Any other option of :func:`cmframe.send.send` (``chunk_size``,
        ``concurrency``, ``retry``, ``progress``, ``resend_unknown``,
        ``dry_run``, ``transport``...).

    Returns
    -------
    dask.dataframe.DataFrame
        The results, read lazily from the journals with
        :func:`cmframe.read_journal` (the folder must be readable by the workers).

    Raises
    ------
    JournalMismatch
        The folder holds the journals of a plan with another number of
        partitions (or a partition's journal holds another plan).
    RequestRejected, SendError
        As in pandas, for the partition being sent; later partitions are not sent.
    """
    from .journal import read_journal
    from .secret import resolve_token
    from .send import send as plain_send

    _require_dask(plan, "send")
    if journal is None:
        raise SpecError("ddf.cm.send needs journal= (a folder): results are read back from it")
    folder = Path(journal)
    folder.mkdir(parents=True, exist_ok=True)
    n = plan.npartitions
    manifest = _read_manifest(folder)
    if manifest is not None and manifest.get("partitions") != n:
        raise JournalMismatch(
            f"the journal folder {str(folder)!r} was written for {manifest.get('partitions')} "
            f"partitions and the plan has {n}: send the same plan to resume, or use a new folder"
        )
    if manifest is None:
        (folder / JOURNAL_MANIFEST).write_text(json.dumps({"partitions": n}))
    secret = resolve_token(token, required=not kwargs.get("dry_run", False))
    paths = [folder / f"part-{i:05d}.cmjournal" for i in range(n)]
    for i, path in enumerate(paths):
        part = plan.get_partition(i).compute()  # to the client: sending stays out of the graph
        plain_send(part, url, secret, path, **kwargs)
    meta = read_journal(paths[0]).iloc[:0]
    return dd.from_map(read_journal, [str(p) for p in paths], meta=meta)


# --------------------------------------------------------------------------- reports
def _files(source: Any) -> list[str]:
    items = [source] if isinstance(source, str | os.PathLike) else list(source)
    files: list[str] = []
    for item in items:
        text = os.fspath(item)
        if _glob.has_magic(text):
            files.extend(sorted(_glob.glob(text, recursive=True)))
        elif Path(text).is_dir():
            files.extend(sorted(str(p) for p in Path(text).rglob("*") if p.is_file() and not p.name.startswith(".")))
        else:
            files.append(text)
    if not files:
        raise SpecError(f"no status-report files match {source!r}")
    return files


def _read_both(path: str, *, format: str | None) -> Any:
    """One file's reports and rejects (a ``ReadResult``), by the pandas reader."""
    from . import reports

    source: Any = path
    if path.endswith((".parquet", ".pq")):
        source = pd.read_parquet(path)  # a frame with report columns: read as a frame
    return reports.read_status_reports(source, format=format, return_rejects=True)


def _read_one(path: str, *, format: str | None, part: str) -> pd.DataFrame:
    """One file's reports (``part="reports"``) or rejects."""
    got = _read_both(path, format=format)
    return got.reports if part == "reports" else got.rejects


def read_status_reports(
    source: Any, *, format: str | None = None, return_rejects: bool = False
) -> dd.DataFrame | ReadResult:
    """Read status-report files into a Dask frame: one partition per file.

    Parameters
    ----------
    source : str, path, or list of these
        Files, folders or globs (``"reports/**/*.csv"``). Each file is read
        by :func:`cmframe.reports.read_status_reports`; Parquet files are read
        as frames with report columns.
    format : str, optional
        As for :func:`cmframe.reports.read_status_reports`.
    return_rejects : bool
        Return ``ReadResult(reports, rejects)`` of two Dask frames. Without it
        malformed reports are left out unannounced (announcing them would mean
        reading every file now): ask for the rejects to count them.

    Returns
    -------
    dask.dataframe.DataFrame or ReadResult
        ``schema.REPORT_COLUMNS``, lazily.
    """
    from .reports import ReadResult

    files = _files(source)
    first = _read_both(files[0], format=format)  # the meta of both frames, read once
    frame = dd.from_map(partial(_read_one, format=format, part="reports"), files,
                        meta=first.reports.iloc[:0])  # fmt: skip
    if not return_rejects:
        return frame
    rejects = dd.from_map(partial(_read_one, format=format, part="rejects"), files,
                          meta=first.rejects.iloc[:0])  # fmt: skip
    return ReadResult(frame, rejects)


# --------------------------------------------------------------------------- merge
def _normalised(values: pd.Series) -> pd.Series:
    """Numbers as the reports' reader normalises them, once per distinct value."""
    from .report_formats import normalise_to

    text = values.astype("string")
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    fixed = pd.array([normalise_to(v) for v in uniques], dtype="string")
    out = fixed.take(codes, allow_fill=True) if len(uniques) else pd.array([None] * len(text), dtype="string")
    return pd.Series(out, index=values.index)


def _with_key(df: pd.DataFrame, number: str) -> pd.DataFrame:
    """Add a hash of (reference, normalised number): equal keys go to one partition."""
    n = len(df)
    ref = df["reference"].astype("string") if "reference" in df.columns else pd.Series(
        pd.array([None] * n, dtype="string"), index=df.index
    )
    key = pd.DataFrame({"r": ref, "n": _normalised(df[number])}, index=df.index)
    hashed = pd.util.hash_pandas_object(key, index=False).to_numpy().view(np.int64)
    return df.assign(**{_KEY: hashed})


def _merge_part(results: pd.DataFrame, reps: pd.DataFrame, *, part: str) -> Any:
    from . import reports

    got = reports.merge_status(results.drop(columns=_KEY), reps.drop(columns=_KEY), return_unmatched=True)
    if part == "campaign":
        return got.campaign
    if part == "unmatched":
        return got.unmatched
    counts = got.campaign.attrs["cm_merge"]
    return pd.DataFrame({k: [v] for k, v in counts.items()}, dtype="int64")


def merge_status(
    results: dd.DataFrame,
    reps: Any,
    *,
    npartitions: int | None = None,
    return_unmatched: bool = False,
) -> dd.DataFrame | MergeResult:
    """Join status reports to send results, distributed, with the pandas rules.

    Both frames are shuffled on a hash of (``reference``, normalised number)
    into the same partitions, then :func:`cmframe.reports.merge_status` runs on
    each pair of partitions. Every row meets all its reports, so the answer is
    the pandas one (rows come out grouped by partition: ``sort_index`` or
    ``set_index`` to order them).

    Parameters
    ----------
    results : dask.dataframe.DataFrame
        The send results.
    reps : dask or pandas DataFrame, or any source of ``read_status_reports``
        The status reports; files are read with ``engine="dask"``.
    npartitions : int, optional
        Partitions of the shuffled join (default: the larger of the two counts).
    return_unmatched : bool
        Return ``MergeResult(campaign, unmatched, conflicts)``: two Dask frames
        and a ``dask.delayed`` conflict count.

    Returns
    -------
    dask.dataframe.DataFrame or MergeResult
        The campaign frame, lazily.
    """
    _require_dask(results, "merge_status")
    from .reports import MergeResult

    if isinstance(reps, pd.DataFrame):
        reps = dd.from_pandas(reps, npartitions=max(1, min(results.npartitions, len(reps) // 100_000 + 1)))
    elif not isinstance(reps, dd.DataFrame):
        reps = read_status_reports(reps)
    n = int(npartitions or max(results.npartitions, reps.npartitions))
    res_keyed = results.map_partitions(_with_key, "number", meta=_meta_of(_with_key, results, "number"))
    rep_keyed = reps.map_partitions(_with_key, "to", meta=_meta_of(_with_key, reps, "to"))
    left = res_keyed.shuffle(on=_KEY, npartitions=n)
    right = rep_keyed.shuffle(on=_KEY, npartitions=n)

    def over_pairs(part: str) -> dd.DataFrame:
        meta = _merge_part(left._meta, right._meta, part=part).iloc[:0]
        return dd.map_partitions(_merge_part, left, right, part=part, meta=meta, align_dataframes=False)

    campaign = over_pairs("campaign")
    if not return_unmatched:
        return campaign
    conflicts = over_pairs("counts")["conflicts"].sum().to_delayed()
    return MergeResult(campaign, over_pairs("unmatched"), conflicts)


# --------------------------------------------------------------------------- summary
def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """The index as ``_k0, _k1, ...`` columns: per-partition results stay plain frames."""
    keys = [f"_k{i}" for i in range(frame.index.nlevels)]
    return frame.reset_index(names=keys)


def _keys(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if isinstance(c, str) and c.startswith("_k") and c[2:].isdigit()]


def _summary_part(df: pd.DataFrame, by: Any, prices: Any) -> pd.DataFrame:
    from . import analysis

    return _flat(analysis.summary(df, by=by, prices=prices))


def _add_up(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Sum per-partition summaries per group; ``<NA>`` anywhere in a group stays ``<NA>``."""
    frame = pd.concat([p for p in parts if len(p)] or list(parts[:1]), ignore_index=True)
    keys = _keys(frame)
    values = [c for c in frame.columns if c not in keys and c not in _RATES]
    grouped = frame.groupby(keys, sort=False, dropna=False, observed=True)[values]
    total = grouped.sum(min_count=1)
    # a stage not run (or an unpriced row) is <NA>, never a partial sum
    missing = frame[values].isna().groupby([frame[k] for k in keys], sort=False, dropna=False,
                                           observed=True).any()  # fmt: skip
    total = total.mask(missing.reindex(total.index).to_numpy())
    return total.reset_index()


def _finish_summary(parts: Sequence[pd.DataFrame], meta: pd.DataFrame) -> pd.DataFrame:
    from . import analysis

    total = _add_up(parts)
    keys = _keys(total)
    result = total.set_index(keys).sort_index(na_position="last")
    result.index.names = meta.index.names
    for column in result.columns:
        result[column] = result[column].astype(meta[column].dtype)
    # the rates of analysis.summary, from the summed counts
    return analysis.add_rates(result)[list(meta.columns)]


def _tree(parts: list, combine: Callable, finish: Callable, split_every: int) -> Any:
    """A delayed tree reduction: ``combine`` groups of ``split_every``, then ``finish``."""
    level = list(parts)
    while len(level) > split_every:
        level = [dask.delayed(combine)(level[i:i + split_every]) for i in range(0, len(level), split_every)]
    return dask.delayed(finish)(level)


def summary(
    ddf: dd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    prices: Any = None,
    compute: bool = True,
    split_every: int = 8,
) -> pd.DataFrame | Any:
    """:func:`cmframe.analysis.summary` of a Dask frame (counts added up over partitions).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        A plan, result or campaign frame.
    by, prices
        As for :func:`cmframe.analysis.summary`.
    compute : bool
        Return the pandas frame (default; it has one row per group), or a
        ``dask.delayed`` object to compute with others in one pass.
    split_every : int
        Partitions combined per step of the reduction tree.

    Returns
    -------
    pandas.DataFrame or dask.delayed.Delayed
        The same frame :func:`cmframe.analysis.summary` returns for the whole data.
    """
    _require_dask(ddf, "summary")
    from . import analysis

    meta = analysis.summary(ddf._meta, by=by, prices=prices)
    parts = ddf.map_partitions(_summary_part, by, prices, meta=_flat(meta).iloc[:0]).to_delayed()
    out = _tree(parts, _add_up, partial(_finish_summary, meta=meta), max(2, int(split_every)))
    return out.compute() if compute else out


# --------------------------------------------------------------------------- errors
def _errors_part(df: pd.DataFrame, by: Any) -> pd.DataFrame:
    from . import analysis

    return analysis.errors(df, by=by)


def _finish_errors(parts: list[pd.DataFrame], sizes: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    from . import analysis

    names = [c for c in meta.columns if c not in analysis.ERRORS_COLUMNS]
    frame = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    if not len(frame):
        return meta.copy()
    groups = [*names, "source", "code"]
    # the example of the partition that saw the code most often stands for the whole
    best = frame.sort_values("count", ascending=False, kind="stable")
    counted = best.groupby(groups, sort=False, dropna=False, observed=True).agg(
        count=("count", "sum"), example=("example", "first"), description=("description", "first")
    ).reset_index()
    # group sizes from the summary reduction (the same group keys)
    rows = sizes.reset_index(drop=not names)["rows"] if not names else None
    if names:
        table = sizes[["rows"]].rename(columns={"rows": "_rows"})
        table.index.names = names
        table = table.reset_index().astype({k: counted[k].dtype for k in names})
        counted = counted.merge(table, on=names, how="left")
    else:
        counted["_rows"] = int(rows.iloc[0])
    counted = analysis.finish_error_counts(counted, names)
    return counted[list(meta.columns)].astype({c: meta[c].dtype for c in analysis.ERRORS_COLUMNS})


def errors(
    ddf: dd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    compute: bool = True,
    split_every: int = 8,
) -> pd.DataFrame | Any:
    """:func:`cmframe.analysis.errors` of a Dask frame (counts added up over partitions).

    ``count``, ``share`` and ``rate`` equal the pandas answer; ``example`` is
    the most frequent text of the partition that saw the code most often (the
    pandas one whenever a code comes with one text, as validation and gateway
    codes usually do).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        A plan, result or campaign frame.
    by : str or list of str, optional
        As for :func:`cmframe.analysis.errors`.
    compute : bool
        Return the pandas frame (default) or a ``dask.delayed`` object.
    split_every : int
        Partitions combined per step of the row-count reduction.

    Returns
    -------
    pandas.DataFrame or dask.delayed.Delayed
    """
    _require_dask(ddf, "errors")
    from . import analysis

    meta = analysis.errors(ddf._meta, by=by)
    smeta = analysis.summary(ddf._meta, by=by)
    parts = ddf.map_partitions(_errors_part, by, meta=meta).to_delayed()
    size_parts = ddf.map_partitions(_summary_part, by, None, meta=_flat(smeta).iloc[:0]).to_delayed()
    sizes = _tree(size_parts, _add_up, partial(_finish_summary, meta=smeta), max(2, int(split_every)))
    out = dask.delayed(_finish_errors)(parts, sizes, meta)
    return out.compute() if compute else out


# --------------------------------------------------------------------------- accessor
@dd.extensions.register_dataframe_accessor("cm")
class DaskCMAccessor:
    """CM Business Messaging campaigns on a Dask DataFrame (``ddf.cm``).

    The same stages as the pandas ``df.cm``, run partition by partition over
    the same functions; see :mod:`cmframe.dask`.
    """

    def __init__(self, obj: dd.DataFrame) -> None:
        self._obj = obj

    def build(self, **spec: Any) -> dd.DataFrame:
        """Build a plan per partition; see :func:`cmframe.dask.build`."""
        return build(self._obj, **spec)

    def send(self, url: str | None = None, token: Any = None, journal: Any = None, **kwargs: Any) -> dd.DataFrame:
        """Send from the client, partition after partition; see :func:`cmframe.dask.send`."""
        return send(self._obj, url, token, journal, **kwargs)

    def merge_status(self, source: Any, **kwargs: Any) -> dd.DataFrame | MergeResult:
        """Shuffled join of status reports; see :func:`cmframe.dask.merge_status`."""
        return merge_status(self._obj, source, **kwargs)

    def summary(self, by: Any = None, **kwargs: Any) -> pd.DataFrame | Any:
        """Outcome counts per group; see :func:`cmframe.dask.summary`."""
        return summary(self._obj, by=by, **kwargs)

    def errors(self, by: Any = None, **kwargs: Any) -> pd.DataFrame | Any:
        """Error codes per group; see :func:`cmframe.dask.errors`."""
        return errors(self._obj, by=by, **kwargs)

