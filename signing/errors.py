"""Why a request cannot be signed.

One root, :class:`SigningError` (a ``ValueError``: the input is wrong, not the machine), and one class per
kind of bad input::

    SigningError
    ├── UnsignableValue   a value JSON cannot carry to PHP (bytes, set, object, NaN, ±inf, a lone surrogate …)
    ├── UnsignableKey     a key that is not str/int (bool included), or not valid UTF-8 text
    └── NestingTooDeep    containers nested past MAX_DEPTH (also what a self-containing list becomes)

Each error names the key path where the problem sits (``packages[3][weight]``), in the same bracket form the
canonical string uses, so support staff can find it in the event. Messages describe the *type* of a bad
value, never the value itself, and never the secret: they end up in logs, dead letters and Sentry.

The errors pickle (Celery moves exceptions between processes): ``args`` is exactly ``(path, detail)``.
"""

from __future__ import annotations


class SigningError(ValueError):
    """The request (or the secret handed to the signer) cannot be signed the way Trademax's PHP does."""


class _AtPath(SigningError):
    """A signing error located at a key path of the request's params."""

    def __init__(self, path: str, detail: str) -> None:
        # A key may hold a lone surrogate (that can be the very error): keep the message printable.
        path = path.encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(path, detail)
        self.path = path
        self.detail = detail

    def __str__(self) -> str:
        return f"cannot sign {self.path or '(params)'}: {self.detail}"


class UnsignableValue(_AtPath):
    """A value that JSON cannot carry, or that PHP would not read back as the same value."""


class UnsignableKey(_AtPath):
    """A key that is not a str or int (``True``/``False`` included), or not encodable as UTF-8."""


class NestingTooDeep(_AtPath):
    """Containers nested deeper than the bound (a payload or a reference cycle gone wrong)."""
