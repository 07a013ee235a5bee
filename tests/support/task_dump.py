"""Where asyncio tasks wait, following each coroutine's await chain (Task.print_stack
shows only the outermost frame of a suspended coroutine)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any


def await_chain(task: asyncio.Task[Any]) -> list[str]:
    lines: list[str] = []
    awaitable: Any = task.get_coro()
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            lines.append(f"    awaiting {awaitable!r}"[:300])
            break
        lines.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return lines


def dump_tasks(title: str) -> None:
    print(f"\n=== {title} ===", file=sys.stderr)
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        print("\n".join(await_chain(task)), file=sys.stderr)
