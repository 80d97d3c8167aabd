"""Shared test configuration: tests never reach anything but loopback."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
# A token set in the developer's shell must never leak into a test run.
os.environ.pop("CM_PRODUCT_TOKEN", None)
