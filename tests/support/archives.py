"""Build contexts as the API and the worker receive them: a tar.gz of named files."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping


def tar_gz(files: Mapping[str, str | bytes]) -> bytes:
    """The files (text or bytes), as regular 0644 members in the given order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
