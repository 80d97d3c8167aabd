"""The product token, kept out of every repr, log, exception and file.

CM's product token authenticates every request. cmframe never stores it (not in
the journal, not in reports) and never prints it: it travels wrapped in
:class:`ProductToken`, whose ``repr``/``str`` are redacted, and is revealed only
at the moment a request header or body is built.
"""

from __future__ import annotations

import os

from .exceptions import TokenError

__all__ = ["ProductToken", "resolve_token", "ENV_VAR"]

ENV_VAR = "CM_PRODUCT_TOKEN"


class ProductToken:
    """A product token whose text is only available through :meth:`reveal`.

    Parameters
    ----------
    value : str
        The token text.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, ProductToken):
            value = value.reveal()
        if not isinstance(value, str) or not value.strip():
            raise TokenError("the product token must be a non-empty string")
        self._value = value.strip()

    def reveal(self) -> str:
        """Return the token text, for building a request and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "ProductToken('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ProductToken):
            return other._value == self._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("ProductToken", self._value))

    def __reduce__(self):  # never pickle the text into a task graph or a file
        raise TypeError("ProductToken cannot be pickled")


def resolve_token(token: str | ProductToken | None = None, *, required: bool = True) -> ProductToken | None:
    """Return the token from the argument, else from ``CM_PRODUCT_TOKEN``.

    Parameters
    ----------
    token : str, ProductToken or None
        An explicit token; wins over the environment.
    required : bool
        Raise :class:`~cmframe.exceptions.TokenError` when no token is found.

    Returns
    -------
    ProductToken or None
    """
    if token is None:
        env = os.environ.get(ENV_VAR)
        if env and env.strip():
            return ProductToken(env)
        if required:
            raise TokenError(
                f"no product token: pass token=... or set the {ENV_VAR} environment variable"
            )
        return None
    return ProductToken(token)
