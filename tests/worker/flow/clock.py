"""A clock a test moves by hand, and a sleep that moves it (nothing in the flow tests really waits)."""
from __future__ import annotations

T0 = 1_714_550_000.0


class HandClock:
    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
