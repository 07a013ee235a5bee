"""Whether DATA_DIR has room: uploaded contexts (api/uploads.py) and, in the embedded
default, the SQLite database are written there. A full DATA_DIR is reported by /readyz
and answered 507 by the writes it stops; it needs no restart once space is freed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

# below this much free space DATA_DIR counts as full: an SQLite write (its WAL grows a
# page at a time) or an upload would fail
MIN_FREE_BYTES = 1024 * 1024

NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_ROOM


def free_bytes(data_dir: Path) -> int:
    """What an unprivileged writer may still use of DATA_DIR's file system."""
    path = Path(data_dir)
    while not path.exists() and path != path.parent:
        path = path.parent  # DATA_DIR not made yet: its file system is its parent's
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def has_room(data_dir: Path) -> bool:
    try:
        return free_bytes(data_dir) >= MIN_FREE_BYTES
    except OSError:
        return False


def disk_full_message(data_dir: Path, what: str) -> str:
    return (f"DATA_DIR {data_dir} is full (disk full): {what}; free space there, "
            "then try again")
