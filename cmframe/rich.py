"""``richContent``: conversation items and suggestions, templated per row.

``conversation=`` and ``suggestions=`` take the spec's own JSON shapes (lists of
dicts). Every string value in them is a template over columns, so a media URL
column or a personalised text works. The JSON is built once with a sentinel in
place of each templated string, split on the sentinels, and joined back with the
per-row JSON-quoted values: one Arrow kernel per piece, no per-row loop.

A Series of per-row lists (or JSON text) is accepted as well; its values are
taken literally and serialised once per distinct value.

Required fields are checked per row (an empty rendered ``url`` fails only the
rows where it is empty) and reported as 305 with the field's path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import fragments, templates
from .exceptions import SpecError

__all__ = ["ACTIONS", "CONVERSATION_ITEMS", "MAX_SUGGESTIONS", "rich_content", "template_strings"]

#: The eight suggestion actions of the spec (canonical spelling).
ACTIONS: tuple[str, ...] = (
    "OpenUrl",
    "CreateCalendarEvent",
    "Dial",
    "ViewLocation",
    "Reply",
    "Login",
    "Logout",
    "ViewProduct",
)
_ACTIONS = {a.lower(): a for a in ACTIONS}
#: Conversation item kinds; each item needs at least one.
CONVERSATION_ITEMS: tuple[str, ...] = ("text", "media", "location", "contact", "template")
MAX_SUGGESTIONS = 11

_SENTINEL = re.compile(r'"\\u0000(\d+)\\u0000"')


class _Leaf:
    """A templated string leaf (index into the rendered arrays)."""

    __slots__ = ("k",)

    def __init__(self, k: int) -> None:
        self.k = k


class _Missing:
    pass


_MISSING = _Missing()


def _get(node: Any, key: str) -> Any:
    """Case-insensitive key lookup (the spec spells ``PhoneNumber`` and ``latitude``)."""
    if not isinstance(node, Mapping):
        return _MISSING
    if key in node:
        return node[key]
    low = key.lower()
    for k, v in node.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return _MISSING


class _Checker:
    """Collects per-row failures of required fields."""

    def __init__(self, n: int, empties: list[np.ndarray], rendered: list[pa.Array]) -> None:
        self.n = n
        self.empties = empties
        self.rendered = rendered
        self.errors: list[tuple[np.ndarray, str]] = []

    def empty(self, value: Any) -> np.ndarray | bool:
        if value is _MISSING or value is None:
            return True
        if isinstance(value, _Leaf):
            return self.empties[value.k]
        if isinstance(value, str):
            return value.strip() == ""
        if isinstance(value, list | dict):
            return len(value) == 0
        return False

    def fail(self, mask: np.ndarray | bool, message: str) -> None:
        if mask is True:
            mask = np.ones(self.n, dtype=bool)
        elif mask is False:
            return
        if mask.any():
            self.errors.append((mask, message))

    def require(self, node: Any, key: str, path: str) -> None:
        self.fail(self.empty(_get(node, key)), f"{path}.{key}: required")

    def require_object(self, node: Any, key: str, fields: tuple[str, ...], path: str) -> Any:
        """``node[key]`` must be an object holding ``fields``; return it (or None)."""
        obj = _get(node, key)
        if not isinstance(obj, Mapping):
            self.fail(True, f"{path}.{key}: required")
            return None
        for name in fields:
            self.require(obj, name, f"{path}.{key}")
        return obj

    def conversation(self, items: Any, path: str = "conversation") -> None:
        if not isinstance(items, list) or not items:
            self.fail(True, f"{path}: must be a non-empty list of conversation items")
            return
        for i, item in enumerate(items):
            p = f"{path}[{i}]"
            if not isinstance(item, Mapping):
                self.fail(True, f"{p}: must be an object")
                continue
            present = [k for k in CONVERSATION_ITEMS if _get(item, k) is not _MISSING]
            if not present:
                self.fail(True, f"{p}: needs one of {', '.join(CONVERSATION_ITEMS)}")
                continue
            all_empty: np.ndarray | bool = True
            for k in present:
                all_empty = all_empty & self.empty(_get(item, k))
            self.fail(all_empty, f"{p}: empty conversation item")
            media = _get(item, "media")
            if isinstance(media, Mapping):
                self.require(media, "mediaUri", f"{p}.media")

    def suggestions(self, items: Any, path: str = "suggestions") -> None:
        if not isinstance(items, list):
            self.fail(True, f"{path}: must be a list of suggestions")
            return
        if len(items) > MAX_SUGGESTIONS:
            self.fail(True, f"{path}: {len(items)} given, at most {MAX_SUGGESTIONS}")
        for i, item in enumerate(items):
            p = f"{path}[{i}]"
            if not isinstance(item, Mapping):
                self.fail(True, f"{p}: must be an object")
                continue
            action = _get(item, "action")
            if action is _MISSING or action is None:
                self.fail(True, f"{p}.action: required")
                continue
            if isinstance(action, _Leaf):
                values = pc.utf8_lower(pc.fill_null(self.rendered[action.k], ""))
                known = pc.is_in(values, pa.array(list(_ACTIONS))).to_numpy(zero_copy_only=False)
                self.fail(~known, f"{p}.action: not one of {', '.join(ACTIONS)}")
                continue  # per-row actions: only the action itself is checked
            name = _ACTIONS.get(str(action).lower())
            if name is None:
                self.fail(True, f"{p}.action: {action!r} is not one of {', '.join(ACTIONS)}")
                continue
            if name not in ("Login", "Logout", "ViewProduct"):
                self.require(item, "label", p)
            if name in ("OpenUrl", "Login"):
                self.require(item, "url", p)
            elif name == "CreateCalendarEvent":
                self.require_object(item, "calendar", ("startTime", "endTime", "title"), p)
            elif name == "Dial":
                self.require_object(item, "dial", ("phoneNumber",), p)
            elif name == "ViewLocation":
                loc = self.require_object(item, "viewLocation", (), p)
                if loc is not None:
                    no_query = self.empty(_get(loc, "searchQuery"))
                    no_coords = self.empty(_get(loc, "latitude")) | self.empty(_get(loc, "longitude"))
                    self.fail(
                        no_query & no_coords,
                        f"{p}.viewLocation: needs searchQuery or latitude and longitude",
                    )
            elif name == "ViewProduct":
                self.require_object(item, "product", ("id",), p)

def _walk(node: Any, leaves: list[str], what: str) -> Any:
    """Copy ``node`` with each templated string replaced by a sentinel and a :class:`_Leaf`."""
    if isinstance(node, str):
        pieces = templates.parse(node, what=what)
        if any(p.field is not None for p in pieces):
            leaves.append(node)
            return _Leaf(len(leaves) - 1)
        return "".join(p.literal for p in pieces)  # "{{" -> "{"
    if isinstance(node, Mapping):
        return {str(k): _walk(v, leaves, what) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_walk(v, leaves, what) for v in node]
    if node is None or isinstance(node, bool | int | float):
        return node
    raise SpecError(f"{what}: {type(node).__name__} values are not JSON ({node!r})")


def template_strings(value: Any, what: str) -> list[str]:
    """The templated strings inside a conversation/suggestions argument (for up-front checks)."""
    if value is None or isinstance(value, pd.Series):
        return []
    leaves: list[str] = []
    _walk(value, leaves, what)
    return leaves


def _sentinels(node: Any) -> Any:
    if isinstance(node, _Leaf):
        return f"\x00{node.k}\x00"
    if isinstance(node, dict):
        return {k: _sentinels(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_sentinels(v) for v in node]
    return node


def _templated_json(df: pd.DataFrame, obj: Any, what: str, kind: str) -> tuple[pa.Array, list]:
    """JSON text per row of a templated structure, and its per-row errors."""
    n = len(df)
    leaves: list[str] = []
    tree = _walk(obj, leaves, what)
    for leaf in leaves:
        templates.check(df, leaf, what=what)
    rendered = [templates.render(df, leaf, what=what) for leaf in leaves]
    empties = [
        pc.fill_null(pc.equal(pc.utf8_trim_whitespace(r), ""), True).to_numpy(zero_copy_only=False)
        for r in rendered
    ]
    checker = _Checker(n, empties, rendered)
    getattr(checker, kind)(tree)
    text = orjson.dumps(_sentinels(tree)).decode()
    pieces = _SENTINEL.split(text)
    if len(pieces) == 1:
        return pa.array(np.full(n, text, dtype=object), type=pa.string()), checker.errors
    parts: list[Any] = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            if piece:
                parts.append(piece)
        else:
            parts.append(fragments.quote(pc.fill_null(rendered[int(piece)], "")))
    return fragments.join(*parts), checker.errors


def _series_json(values: pd.Series, what: str, kind: str) -> tuple[pa.Array, list]:
    """JSON text per row of a Series of per-row lists/JSON text (taken literally)."""
    n = len(values)
    texts: list[str | None] = []
    for v in values.tolist():  # per-row Python: the Series form is for small or odd cases
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            texts.append(None)
        elif isinstance(v, str):
            texts.append(v)
        else:
            try:
                texts.append(orjson.dumps(v).decode())
            except TypeError as exc:
                raise SpecError(f"{what}: row value is not JSON: {exc}") from None
    codes, uniques = pd.factorize(np.asarray(texts, dtype=object))
    compact: list[str] = []
    errors: list[tuple[np.ndarray, str]] = []
    for j, text in enumerate(uniques):
        rows = codes == j
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            errors.append((rows, f"{what}: not valid JSON"))
            compact.append(text)
            continue
        checker = _Checker(1, [], [])
        getattr(checker, kind)(obj)
        for _, message in checker.errors:
            errors.append((rows, message))
        compact.append(orjson.dumps(obj).decode())
    arr = pa.array(compact, type=pa.string()).take(pa.array(codes, mask=codes < 0))
    assert len(arr) == n
    return arr, errors


def _part(df: pd.DataFrame, value: Any, what: str, kind: str) -> tuple[pa.Array | None, list]:
    if value is None:
        return None, []
    if isinstance(value, pd.Series):
        if not value.index.equals(df.index):
            if not (value.index.is_unique and df.index.is_unique):
                raise SpecError(f"{what}: the Series' index does not match the frame's")
            value = value.reindex(df.index)
        return _series_json(value, what, kind)
    if isinstance(value, Mapping) and kind == "suggestions":
        value = [value]
    if not isinstance(value, list | tuple):
        raise SpecError(f"{what}: expected a list of {kind} items (the spec's JSON shape)")
    if kind == "conversation" and not value:
        raise SpecError(f"{what}: richContent needs at least one conversation item")
    return _templated_json(df, list(value), what, kind)


def rich_content(
    df: pd.DataFrame, conversation: Any = None, suggestions: Any = None
) -> tuple[pa.Array | None, list[tuple[np.ndarray, str]]]:
    """The ``richContent`` JSON text per row, and per-row problems (for 305).

    Parameters
    ----------
    df : pandas.DataFrame
        The recipient frame (templates refer to its columns).
    conversation : list of dict or pandas.Series, optional
        Conversation items in the spec's JSON shape.
    suggestions : list of dict or pandas.Series, optional
        Suggestions in the spec's JSON shape.

    Returns
    -------
    text : pyarrow.StringArray or None
        Compact JSON of ``{"conversation": [...], "suggestions": [...]}`` per row
        (null where the row has none), or ``None`` when neither is given.
    errors : list of (mask, message)
        Rows failing a required field, with a message naming its path.

    Raises
    ------
    SpecError, MissingColumnError
        Not the spec's shape, or a placeholder names no column.
    """
    if conversation is None and suggestions is None:
        return None, []
    if conversation is None:
        raise SpecError("suggestions= needs conversation= too: richContent requires a conversation")
    conv, errors = _part(df, conversation, "conversation", "conversation")
    sugg, more = _part(df, suggestions, "suggestions", "suggestions")
    errors = errors + more
    if sugg is None:
        text = fragments.join('{"conversation":', conv, "}")
    else:
        with_sugg = fragments.join('{"conversation":', conv, ',"suggestions":', sugg, "}")
        without = fragments.join('{"conversation":', conv, "}")
        text = pc.coalesce(with_sugg, without)
    return text, errors
