"""Contextual chunks: ``chunks.context`` (document title and heading path) is indexed with the content.

A chunk deep in a page rarely repeats the page's subject ("VACUUM", "os.walk"), so neither BM25 nor the encoder
could tell what it is about. The context is indexed and embedded with the chunk, while ``content`` stays the
clean text that search shows and answers quote. Existing rows get an empty context, which leaves their
tsvectors, token counts and postings as they were; re-ingesting rebuilds them (the content hash changes).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CONFIG = "english"
INDEXED = {"0007": "context || ' ' || content", "0006": "content"}


def token_count_trigger(indexed: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION pgrag_set_token_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.token_count := pgrag_token_count(to_tsvector('{CONFIG}'::regconfig, {indexed.replace("context", "NEW.context").replace("content", "NEW.content")}));
  RETURN NEW;
END $$
"""


def index_text(revision: str) -> None:
    """Regenerate tsv from the revision's indexed text (a generated column's expression cannot be altered
    before PostgreSQL 17, so it is dropped and added; values are unchanged for an empty context)."""
    op.drop_index("chunks_tsv", table_name="chunks")
    op.drop_column("chunks", "tsv")
    op.add_column("chunks", sa.Column("tsv", TSVECTOR, sa.Computed(
        f"to_tsvector('{CONFIG}'::regconfig, {INDEXED[revision]})", persisted=True), nullable=False))
    op.create_index("chunks_tsv", "chunks", ["tsv"], postgresql_using="gin")
    op.execute(token_count_trigger(INDEXED[revision]))
    op.execute("DROP TRIGGER chunks_token_count ON chunks")
    columns = "content, context" if revision == "0007" else "content"
    op.execute(f"CREATE TRIGGER chunks_token_count BEFORE INSERT OR UPDATE OF {columns} ON chunks "
               "FOR EACH ROW EXECUTE FUNCTION pgrag_set_token_count()")


def upgrade() -> None:
    op.add_column("chunks", sa.Column("context", sa.Text, nullable=False, server_default=""))
    index_text("0007")


def downgrade() -> None:
    index_text("0006")
    op.drop_column("chunks", "context")
