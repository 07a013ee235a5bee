"""The type of the fault-injection suite's `fault_figures` fixture (tests/faults/conftest.py):
a case calls it once with its figures, which the run prints as one table at its end."""

from __future__ import annotations

from collections.abc import Callable

FaultFigures = Callable[[dict[str, object]], None]
