"""The result of one set-up check, shared by `preflight` and `tls check`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    outcome: Outcome
    title: str
    detail: str = ""
    # what to run (or change) to fix it; shown for WARN and FAIL
    fix: str = ""

    def line(self) -> str:
        text = f"{self.outcome.value:<4} {self.title}"
        if self.detail:
            text += f": {self.detail}"
        if self.fix and self.outcome is not Outcome.OK:
            text += f"\n     fix: {self.fix}"
        return text


def failed(checks: list[Check]) -> bool:
    return any(c.outcome is Outcome.FAIL for c in checks)
