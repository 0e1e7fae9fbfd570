"""Chunks are parsed once: the BEFORE trigger sets ``tsv`` and its ``token_count`` from one ``to_tsvector``.

``tsv`` was a stored generated column, and generated columns are computed after BEFORE triggers, so the trigger
that sets the BM25 document length had to parse the text again: the costliest function of a chunk's write
(docs/scale.md). ``tsv`` becomes a plain column that the trigger fills; it is computed again whenever the text
or ``tsv`` itself is written, so it cannot drift from the text. Values are unchanged.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import importlib

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CONFIG = "english"

INDEX_TEXT = f"""
CREATE OR REPLACE FUNCTION pgrag_index_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.tsv := to_tsvector('{CONFIG}'::regconfig, NEW.context || ' ' || NEW.content);
  NEW.token_count := pgrag_token_count(NEW.tsv);
  RETURN NEW;
END $$
"""


def upgrade() -> None:
    op.execute("DROP TRIGGER chunks_token_count ON chunks")
    op.execute("DROP FUNCTION pgrag_set_token_count()")
    op.execute("ALTER TABLE chunks ALTER COLUMN tsv DROP EXPRESSION")
    op.execute(INDEX_TEXT)
    op.execute("CREATE TRIGGER chunks_index_text BEFORE INSERT OR UPDATE OF content, context, tsv ON chunks "
               "FOR EACH ROW EXECUTE FUNCTION pgrag_index_text()")


def downgrade() -> None:
    previous = importlib.import_module("pgrag.migrations.versions.0007_chunk_context")
    op.execute("DROP TRIGGER chunks_index_text ON chunks")
    op.execute("DROP FUNCTION pgrag_index_text()")
    op.execute("DROP INDEX chunks_tsv")
    op.execute("ALTER TABLE chunks DROP COLUMN tsv")
    op.execute(f"ALTER TABLE chunks ADD COLUMN tsv tsvector NOT NULL "
               f"GENERATED ALWAYS AS (to_tsvector('{CONFIG}'::regconfig, context || ' ' || content)) STORED")
    op.execute("CREATE INDEX chunks_tsv ON chunks USING gin (tsv)")
    op.execute(previous.token_count_trigger(previous.INDEXED["0007"]))
    op.execute("CREATE TRIGGER chunks_token_count BEFORE INSERT OR UPDATE OF content, context ON chunks "
               "FOR EACH ROW EXECUTE FUNCTION pgrag_set_token_count()")
