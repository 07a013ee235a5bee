"""A private PostgreSQL server for tests: `initdb` into a temp dir, free 127.0.0.1 port,
trust auth for the local superuser, with stop/kill/restart helpers.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
`postgres` system user (`runuser -u postgres --`) with the temp dir chowned to it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from support.ports import free_port


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin dir, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def postgres_available() -> bool:
    return postgres_bin() is not None


class PostgresServer:
    """`start()` runs initdb on first use; data survive `stop()`/`kill()`/`restart()`
    (like a real server), `close()` removes everything."""

    def __init__(self, database: str = "slipway") -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin)")
        self.bin = bindir
        self.port = free_port()
        self.database = database
        self.dir = Path(tempfile.mkdtemp(prefix="slipway-pg-"))
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "sock"
        self.socket_dir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None
        self._prefix: list[str] = []
        self.user = "postgres"
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (self.dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            # setpriv execs (runuser forks), so the child we signal is the postmaster
            self._prefix = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                            "--init-groups", "--"]
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        self._initialised = False

    @property
    def uri(self) -> str:
        """DB_URI as a Quay config would give it."""
        return self.uri_for(self.database)

    def uri_for(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database (isolation between tests); returns its DB_URI."""
        import uuid

        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.uri_for("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri_for(name)

    def _run(self, *argv: str) -> None:
        result = subprocess.run([*self._prefix, *argv], capture_output=True, timeout=120)
        if result.returncode != 0:
            output = result.stdout.decode()[-1500:] + result.stderr.decode()[-1500:]
            raise RuntimeError(f"{argv[0]} failed: {output}")

    def _initdb(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        self._initialised = True

    def start(self) -> None:
        """Start it on its port. On its first start only, a port taken since free_port()
        chose it (by a server or a client of another test) gives way to another one:
        a restart must keep the port its clients know."""
        first = not self._initialised
        for _ in range(5):
            try:
                self._start()
                return
            except RuntimeError as exc:
                if not (first and "Address already in use" in str(exc)):
                    raise
                self.port = free_port()
        self._start()

    def _start(self) -> None:
        assert self.proc is None, "already running"
        if not self._initialised:
            self._initdb()
        log = open(self.dir / "postgres.log", "ab")  # noqa: SIM115 (the child keeps it)
        since = log.tell()
        self.proc = subprocess.Popen(
            [*self._prefix, str(self.bin / "postgres"), "-D", str(self.data),
             "-p", str(self.port), "-h", "127.0.0.1", "-k", str(self.socket_dir),
             # fsync off only risks data on an OS crash, never on a killed server; commits
             # stay synchronous, so what a client saw committed survives kill()
             "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=300"],
            stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"postgres exited at start:\n{self.log_tail(since)}")
            if self._accepting():
                if not (self.dir / ".created").exists():
                    self._run(str(self.bin / "createdb"), "-h", "127.0.0.1",
                              "-p", str(self.port), "-U", self.user, self.database)
                    (self.dir / ".created").touch()
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"postgres did not accept connections in time:\n{self.log_tail()}")

    def _accepting(self) -> bool:
        result = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q",
             "-U", self.user, "-d", "postgres"],
            capture_output=True, timeout=10,
        )
        return result.returncode == 0

    def log_tail(self, since: int = 0) -> str:
        """The log's end (of what it wrote from byte `since` on)."""
        path = self.dir / "postgres.log"
        if not path.exists():
            return ""
        with path.open("rb") as fh:
            fh.seek(since)
            return fh.read().decode(errors="replace")[-3000:]

    def _end(self, sig: int) -> None:
        if self.proc is None:
            return
        if sig == signal.SIGKILL:
            # the whole process group: backends would otherwise keep the port and shm
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        if sig == signal.SIGKILL:
            # a killed postmaster leaves its pid file; give the backends (killed with it,
            # same process group) a moment to go, then clear it
            time.sleep(0.2)
            (self.data / "postmaster.pid").unlink(missing_ok=True)
            for lock in self.socket_dir.glob(".s.PGSQL.*"):
                lock.unlink(missing_ok=True)

    def stop(self) -> None:
        """Fast shutdown: open sessions are disconnected, data are kept."""
        self._end(signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL of the postmaster and every backend: a crash; committed data survive."""
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started private server, removed afterwards (the tests' fixtures)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
