"""Initial schema: collections, embedding spaces, documents, chunks with full-text, embeddings, BM25 statistics.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CONFIG = "english"

# Tokens of a tsvector = the positions it kept (stop words are dropped), i.e. the BM25 document length.
TOKEN_COUNT = """
CREATE FUNCTION pgrag_token_count(tsvector) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
$$ SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)::integer FROM unnest($1) $$
"""

# The query's lexemes OR-ed together: natural-language questions match almost nothing when every term is required.
OR_QUERY = f"""
CREATE FUNCTION pgrag_or_query(query text) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
$$ SELECT coalesce(string_agg('''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | '), '')::tsquery
   FROM unnest(tsvector_to_array(to_tsvector('{CONFIG}'::regconfig, query))) AS lexeme $$
"""

# Document frequencies and collection totals for BM25, maintained per statement from transition tables so that
# COPY, cascading deletes and hand-written SQL all keep them exact. The collection row is updated first: it
# serialises concurrent writers of one collection before they touch lexeme rows, which rules out deadlocks.
BM25_STATS = """
CREATE FUNCTION pgrag_maintain_bm25_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE collections c SET chunk_count = c.chunk_count - d.n, token_count = c.token_count - d.t
    FROM (SELECT collection_id, count(*) AS n, sum(token_count) AS t FROM old_chunks GROUP BY 1) d
    WHERE c.id = d.collection_id;
    WITH gone AS (
      SELECT o.collection_id, l.lexeme, count(*) AS n
      FROM old_chunks o, unnest(tsvector_to_array(o.tsv)) AS l(lexeme) GROUP BY 1, 2
    )
    UPDATE lexeme_stats s SET doc_freq = s.doc_freq - gone.n FROM gone
    WHERE s.collection_id = gone.collection_id AND s.lexeme = gone.lexeme;
    DELETE FROM lexeme_stats WHERE doc_freq <= 0;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE collections c SET chunk_count = c.chunk_count + d.n, token_count = c.token_count + d.t
    FROM (SELECT collection_id, count(*) AS n, sum(token_count) AS t FROM new_chunks GROUP BY 1) d
    WHERE c.id = d.collection_id;
    INSERT INTO lexeme_stats AS s (collection_id, lexeme, doc_freq)
    SELECT n.collection_id, l.lexeme, count(*)
    FROM new_chunks n, unnest(tsvector_to_array(n.tsv)) AS l(lexeme)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (collection_id, lexeme) DO UPDATE SET doc_freq = s.doc_freq + EXCLUDED.doc_freq;
  END IF;
  RETURN NULL;
END $$
"""

# Generated columns may not call user-defined functions, so the BM25 length is set by a row trigger.
TOKEN_COUNT_TRIGGER = f"""
CREATE FUNCTION pgrag_set_token_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.token_count := pgrag_token_count(to_tsvector('{CONFIG}'::regconfig, NEW.content));
  RETURN NEW;
END $$
"""

TRIGGERS = {
    "INSERT": "REFERENCING NEW TABLE AS new_chunks",
    "DELETE": "REFERENCING OLD TABLE AS old_chunks",
    "UPDATE": "REFERENCING OLD TABLE AS old_chunks NEW TABLE AS new_chunks",
}


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(TOKEN_COUNT)
    op.execute(OR_QUERY)
    now = sa.text("now()")
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("chunk_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("token_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
    )
    op.create_table(
        "embedding_spaces",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("dimension", sa.Integer, nullable=False),
        sa.Column("distance", sa.Text, nullable=False, server_default="cosine"),
        sa.Column("normalized", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("query_prefix", sa.Text, nullable=False, server_default=""),
        sa.Column("document_prefix", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False, server_default="building"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.CheckConstraint("status IN ('building', 'active', 'retired')", name="embedding_spaces_status"),
        sa.CheckConstraint("dimension > 0", name="embedding_spaces_dimension"),
    )
    op.create_index(
        "embedding_spaces_one_active", "embedding_spaces", ["collection_id"], unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.UniqueConstraint("collection_id", "source", name="documents_collection_source"),
    )
    op.create_table(
        "chunks",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("document_id", sa.BigInteger, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        sa.Column("tsv", TSVECTOR, sa.Computed(f"to_tsvector('{CONFIG}'::regconfig, content)", persisted=True), nullable=False),
        sa.Column("token_count", sa.Integer, nullable=False),
    )
    op.create_index("ix_chunks_document_id", "chunks", ["document_id"])
    op.create_index("chunks_collection", "chunks", ["collection_id"])
    op.create_index("chunks_tsv", "chunks", ["tsv"], postgresql_using="gin")
    op.create_index(
        "chunks_metadata", "chunks", ["metadata"], postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
    )
    op.create_table(
        "chunk_embeddings",
        sa.Column("space_id", sa.Integer, sa.ForeignKey("embedding_spaces.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("chunk_id", sa.BigInteger, sa.ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("embedding", pgvector.sqlalchemy.Vector(), nullable=False),
    )
    op.create_index("chunk_embeddings_chunk", "chunk_embeddings", ["chunk_id"])
    op.create_table(
        "lexeme_stats",
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("lexeme", sa.Text, primary_key=True),
        sa.Column("doc_freq", sa.Integer, nullable=False),
    )
    op.execute(TOKEN_COUNT_TRIGGER)
    op.execute(
        "CREATE TRIGGER chunks_token_count BEFORE INSERT OR UPDATE OF content ON chunks "
        "FOR EACH ROW EXECUTE FUNCTION pgrag_set_token_count()"
    )
    op.execute(BM25_STATS)
    for event, referencing in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER chunks_bm25_stats_{event.lower()} AFTER {event} ON chunks {referencing} "
            "FOR EACH STATEMENT EXECUTE FUNCTION pgrag_maintain_bm25_stats()"
        )


def downgrade() -> None:
    for table in ("lexeme_stats", "chunk_embeddings", "chunks", "documents", "embedding_spaces", "collections"):
        op.drop_table(table)
    for function in ("pgrag_maintain_bm25_stats()", "pgrag_set_token_count()", "pgrag_or_query(text)",
                     "pgrag_token_count(tsvector)"):
        op.execute(f"DROP FUNCTION {function}")
