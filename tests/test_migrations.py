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


def test_impact_postings_migration_carries_stored_chunks(kb):
    """0008 rebuilds the postings of chunks stored before it, numbered by term, with their impacts."""
    with kb.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS pgrag_migration_data"))
        conn.execute(sa.text("CREATE DATABASE pgrag_migration_data"))
    scratch = sa.create_engine(kb.engine.url.set(database="pgrag_migration_data"))
    try:
        db_engine.upgrade(scratch, "0007")
        with scratch.begin() as conn:
            conn.execute(sa.text("INSERT INTO collections (id, name) VALUES (1, 'old')"))
            conn.execute(sa.text("INSERT INTO documents (id, collection_id, source, content_hash) "
                                 "VALUES (1, 1, 'a', 'h')"))
            conn.execute(sa.text("INSERT INTO chunks (document_id, collection_id, ordinal, content) VALUES "
                                 "(1, 1, 0, 'Bees make honey; honey keeps.'), (1, 1, 1, 'Wasps make no honey.')"))
        db_engine.upgrade(scratch)
        with scratch.connect() as conn:
            postings = conn.execute(sa.text(
                "SELECT s.lexeme, p.tf, p.impact > 0 FROM chunk_postings p JOIN lexeme_stats s ON s.id = p.term_id "
                "ORDER BY p.chunk_id, s.lexeme")).all()
        assert postings == [("bee", 1, True), ("honey", 2, True), ("keep", 1, True), ("make", 1, True),
                            ("honey", 1, True), ("make", 1, True), ("wasp", 1, True)]
    finally:
        scratch.dispose()
        with kb.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("DROP DATABASE pgrag_migration_data WITH (FORCE)"))
