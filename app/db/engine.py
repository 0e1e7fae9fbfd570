"""Engine creation and schema versioning: which server to talk to, and whether its schema is current."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from pgrag import migrations
from pgrag.config import Settings
from pgrag.db import embedded
from pgrag.errors import SchemaOutOfDate

MIGRATIONS_DIR = Path(migrations.__file__).parent
# deadlock_detected, serialization_failure: the transaction was rolled back whole and may simply run again.
TRANSIENT_SQLSTATES = {"40P01", "40001"}
TRANSACTION_ATTEMPTS = 5
T = TypeVar("T")


def database_url(settings: Settings) -> str:
    """``DATABASE_URL`` when set (driver normalised to psycopg 3), else the embedded server's URL."""
    if settings.database_url:
        url = sa.engine.make_url(settings.database_url)
        if url.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)
    return embedded.start(settings.pgdata, settings.embedded_shared_buffers_mb)


def create_engine(settings: Settings) -> sa.Engine:
    """An engine on the configured server; pair with ``dispose`` so an embedded server can stop."""
    return sa.create_engine(database_url(settings), pool_pre_ping=True)


def in_transaction(engine: sa.Engine, work: Callable[[sa.Connection], T]) -> T:
    """Run ``work`` in one transaction, again (with jittered backoff, a bounded number of times) when the
    database rolled it back for a deadlock or a serialization failure, which concurrent writers can cause."""
    def transient(exc: BaseException) -> bool:
        return isinstance(exc, sa.exc.DBAPIError) and getattr(exc.orig, "sqlstate", None) in TRANSIENT_SQLSTATES

    for attempt in Retrying(retry=retry_if_exception(transient), stop=stop_after_attempt(TRANSACTION_ATTEMPTS),
                            wait=wait_random_exponential(multiplier=0.05, max=2), reraise=True):
        with attempt, engine.begin() as conn:
            return work(conn)
    raise AssertionError("unreachable: Retrying either returns or re-raises")


def dispose(engine: sa.Engine, settings: Settings) -> None:
    engine.dispose()
    if not settings.database_url:
        embedded.stop(settings.pgdata)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine.url.render_as_string(hide_password=False)), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine.url.render_as_string(hide_password=False)), revision)


def is_current(engine: sa.Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def ensure_schema(engine: sa.Engine, settings: Settings) -> None:
    """Migrate the embedded database (pgrag owns it); for an external one, ask for the explicit step."""
    if is_current(engine):
        return
    if settings.database_url:
        raise SchemaOutOfDate(
            "The database schema is not at the version this pgrag needs. Run `pgrag db upgrade` "
            "(alembic upgrade head) against DATABASE_URL first."
        )
    upgrade(engine)
