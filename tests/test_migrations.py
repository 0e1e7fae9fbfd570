"""Migrations up and down on a scratch database of the same server."""

import sqlalchemy as sa

from pgrag.db import engine as db_engine

TABLES = {"collections", "embedding_spaces", "documents", "chunks", "chunk_embeddings", "lexeme_stats",
          "chunk_postings"}


def test_upgrade_downgrade_upgrade(kb):
    with kb.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS pgrag_migration_test"))
        conn.execute(sa.text("CREATE DATABASE pgrag_migration_test"))
    scratch = sa.create_engine(kb.engine.url.set(database="pgrag_migration_test"))
    try:
        def tables() -> set[str]:
            return set(sa.inspect(scratch).get_table_names()) & TABLES

        db_engine.upgrade(scratch)
        assert tables() == TABLES and db_engine.is_current(scratch)
        db_engine.downgrade(scratch, "base")
        assert tables() == set() and not db_engine.is_current(scratch)
        db_engine.upgrade(scratch)
        assert tables() == TABLES
    finally:
        scratch.dispose()
        with kb.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("DROP DATABASE pgrag_migration_test WITH (FORCE)"))
