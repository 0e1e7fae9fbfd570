"""Alembic environment: the URL comes from the caller's config or, for the `alembic` CLI, from Settings."""

import pgvector.sqlalchemy  # noqa: F401  (lets autogenerate render the vector type)
from alembic import context
from sqlalchemy import create_engine, pool

from pgrag.db.models import metadata

config = context.config


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from pgrag.config import Settings
    from pgrag.db.engine import database_url

    return database_url(Settings())


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
