"""What the fake Trademax answers: status, envelope, data — in the document's response shapes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Error codes from the API document's table.
GENERAL_ERROR = 1
MISSING_AUTH_PARAM = 401
INVALID_AUTH_PARAM = 402
UNKNOWN_API_KEY = 404
BAD_SIGNATURE = 405
REQUIRED_PARAM_MISSING = 450
PARAM_INVALID = 451
DUPLICATE_TRANSACTION = 452
SERVER_ERROR = 500


@dataclass(frozen=True)
class Answer:
    """One HTTP answer.  ``envelope=False`` sends ``data`` bare (the order-lines quirk); ``code_key`` is
    ``"code"`` for the vendor-dispatch quirk."""

    status: int
    error_code: int = 0
    messages: tuple[str, ...] = ()
    data: Any = field(default_factory=list)
    envelope: bool = True
    code_key: str = "error_code"
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> Any:
        if not self.envelope:
            return self.data
        return {"error": {self.code_key: self.error_code, "error_messages": list(self.messages)},
                "data": self.data}


class Rejected(Exception):
    """Raised inside the sandbox to answer with an error; carries the :class:`Answer`."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.messages)
        self.answer = answer


def ok(data: Any, **quirks: Any) -> Answer:
    return Answer(status=200, error_code=0, data=data, **quirks)


def fail(status: int, error_code: int, message: str, data: Any = None) -> Answer:
    return Answer(status=status, error_code=error_code, messages=(message,),
                  data=[] if data is None else data)


def reject(status: int, error_code: int, message: str, data: Any = None) -> Rejected:
    return Rejected(fail(status, error_code, message, data))
