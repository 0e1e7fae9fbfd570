"""Migrations up and down on a scratch database of the same server."""

import sqlalchemy as sa

from pgrag.db import engine as db_engine

TABLES = {"collections", "embedding_spaces", "documents", "chunks", "chunk_embeddings", "lexeme_stats",
          "posting_blocks"}


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


def test_postings_migrations_carry_stored_chunks(kb):
    """0008 and 0009 rebuild the postings of chunks stored before them: numbered by term, in impact buckets; 0010
    keeps their tsv."""
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
                "SELECT s.lexeme, ch.ordinal, b.bucket FROM posting_blocks b JOIN lexeme_stats s ON s.id = b.term_id, "
                "unnest(b.chunk_ids) x(id) JOIN chunks ch ON ch.id = x.id ORDER BY 1, 2")).all()
        assert [(lexeme, ordinal) for lexeme, ordinal, _ in postings] == [
            ("bee", 0), ("honey", 0), ("honey", 1), ("keep", 0), ("make", 0), ("make", 1), ("wasp", 1)]
        bucket = {(lexeme, ordinal): bucket for lexeme, ordinal, bucket in postings}
        assert bucket["honey", 0] > bucket["make", 0] > 0  # said twice: a higher impact
        with scratch.begin() as conn:  # 0010: tsv is set by a trigger, whatever writes it
            conn.execute(sa.text("UPDATE chunks SET tsv = to_tsvector('simple', 'the other words')"))
            stored = conn.execute(sa.text("SELECT tsv = to_tsvector('english', context || ' ' || content), "
                                          "token_count FROM chunks ORDER BY ordinal")).all()
        assert stored == [(True, 5), (True, 3)]
    finally:
        scratch.dispose()
        with kb.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("DROP DATABASE pgrag_migration_data WITH (FORCE)"))
