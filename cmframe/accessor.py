"""The ``df.cm`` accessor: a thin forwarder to the stage modules.

pandas rebuilds an accessor on every attribute access, so it keeps no state:
each method passes the frame to a plain ``DataFrame -> DataFrame`` function of
the module that owns the stage, and returns what that function returns.
"""

from __future__ import annotations

import importlib
from typing import Any

import pandas as pd

__all__ = ["CMAccessor"]


def _call(module: str, name: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(importlib.import_module(f"cmframe.{module}"), name)(*args, **kwargs)


@pd.api.extensions.register_dataframe_accessor("cm")
class CMAccessor:
    """CM Business Messaging campaigns on a DataFrame (``df.cm``).

    Stages: :meth:`build` a plan from recipients, :meth:`requests` to see the
    request documents, :meth:`send` the plan, :meth:`merge_status` to join
    status reports, then :meth:`summary`, :meth:`errors`, :meth:`latency` and
    the ``plot_*`` charts to analyse.
    """

    def __init__(self, obj: pd.DataFrame) -> None:
        self._obj = obj

    # -- build ---------------------------------------------------------------
    def build(self, **spec: Any) -> pd.DataFrame:
        """Build a plan; see :func:`cmframe.build.build`."""
        return _call("build", "build", self._obj, **spec)

    def layout(self, **kwargs: Any) -> pd.DataFrame:
        """Where each row goes in the requests; see :func:`cmframe.build.layout`."""
        return _call("build", "layout", self._obj, **kwargs)

    def requests(self, **kwargs: Any):
        """Request documents of a plan; see :func:`cmframe.build.requests`."""
        return _call("build", "requests", self._obj, **kwargs)

    # -- send ----------------------------------------------------------------
    def send(self, **kwargs: Any) -> pd.DataFrame:
        """Send a plan; see :func:`cmframe.send.send`."""
        return _call("send", "send", self._obj, **kwargs)

    # -- status reports --------------------------------------------------------
    def merge_status(self, reports: Any, **kwargs: Any) -> pd.DataFrame:
        """Join status reports to send results; see :func:`cmframe.reports.merge_status`."""
        return _call("reports", "merge_status", self._obj, reports, **kwargs)

    # -- analysis ------------------------------------------------------------
    def summary(self, by: Any = None, **kwargs: Any) -> pd.DataFrame:
        """Outcome counts per group; see :func:`cmframe.analysis.summary`."""
        return _call("analysis", "summary", self._obj, by=by, **kwargs)

    def errors(self, by: Any = None, **kwargs: Any) -> pd.DataFrame:
        """Error codes per group; see :func:`cmframe.analysis.errors`."""
        return _call("analysis", "errors", self._obj, by=by, **kwargs)

    def latency(self, by: Any = None, **kwargs: Any) -> pd.DataFrame:
        """Delivery-latency quantiles per group; see :func:`cmframe.analysis.latency`."""
        return _call("analysis", "latency", self._obj, by=by, **kwargs)

    def outcome(self) -> pd.Series:
        """The one outcome of every row; see :func:`cmframe.analysis.outcome`."""
        return _call("analysis", "outcome", self._obj)

    def attention(self, **kwargs: Any) -> pd.DataFrame:
        """Rows needing a decision; see :func:`cmframe.analysis.attention`."""
        return _call("analysis", "attention", self._obj, **kwargs)

    # -- charts ----------------------------------------------------------------
    def plot_outcomes(self, by: Any = None, **kwargs: Any):
        """Stacked outcome bars per group; see :func:`cmframe.plotting.plot_outcomes`."""
        return _call("plotting", "plot_outcomes", self._obj, by=by, **kwargs)

    def plot_errors(self, by: Any = None, **kwargs: Any):
        """Error codes per group; see :func:`cmframe.plotting.plot_errors`."""
        return _call("plotting", "plot_errors", self._obj, by=by, **kwargs)

    def plot_latency(self, by: Any = None, **kwargs: Any):
        """Latency ECDF per group; see :func:`cmframe.plotting.plot_latency`."""
        return _call("plotting", "plot_latency", self._obj, by=by, **kwargs)

    def plot_timeline(self, **kwargs: Any):
        """Reports over time; see :func:`cmframe.plotting.plot_timeline`."""
        return _call("plotting", "plot_timeline", self._obj, **kwargs)
