"""The CA certificates a worker trusts, read from the files its executor's config names
(CA_CERT, then EXTRA_CA_CERTS), for the executors that carry them to the worker's machine
or pod: the Ignition config (ec2, kubernetes) and the kubernetesPodman Secret."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from slipway.executors.base import ExecutorError
from slipway.executors.config_base import ExecutorConfigBase

PEM_MARKER = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class CaFile:
    path: str
    key: str  # what named the file, for the error message
    fix: str = "fix the path or remove the key"


def configured_ca_files(config: ExecutorConfigBase) -> list[CaFile]:
    files = [CaFile(str(config.CA_CERT), "CA_CERT")] if config.CA_CERT else []
    files += [CaFile(str(path), "EXTRA_CA_CERTS") for path in config.EXTRA_CA_CERTS]
    return files


def read_ca_certs(files: Iterable[CaFile]) -> list[str]:
    """Each file's PEM text, ending in a newline. A file that cannot be read or holds no
    PEM certificate is an ExecutorError naming it: a worker that does not trust the
    manager's certificate could never register."""
    pems: list[str] = []
    for ca in files:
        where = f"CA certificate file {ca.path!r} ({ca.key})"
        try:
            pem = Path(ca.path).expanduser().read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
            raise ExecutorError(f"{where} cannot be read: {reason}; {ca.fix}") from None
        if PEM_MARKER not in pem:
            raise ExecutorError(f"{where} holds no PEM certificate; {ca.fix}")
        pems.append(pem if pem.endswith("\n") else pem + "\n")
    return pems
