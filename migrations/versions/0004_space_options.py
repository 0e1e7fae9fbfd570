"""Embedding-space options: Matryoshka truncation and halfvec storage.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


CHUNK_OVERVIEW = """
CREATE OR REPLACE VIEW chunk_overview AS
SELECT ch.id AS chunk_id, col.name AS collection, d.source, ch.ordinal, ch.content, ch.metadata,
       s.id AS space_id, s.provider || ':' || s.model AS model, s.dimension, s.status AS space_status,
       {embedding} AS embedding
FROM chunks ch
JOIN documents d ON d.id = ch.document_id
JOIN collections col ON col.id = ch.collection_id
LEFT JOIN chunk_embeddings e ON e.chunk_id = ch.id
LEFT JOIN embedding_spaces s ON s.id = e.space_id"""


def upgrade() -> None:
    op.add_column("embedding_spaces", sa.Column("truncate_dim", sa.Integer, nullable=True))
    op.add_column("embedding_spaces", sa.Column("storage", sa.Text, nullable=False, server_default="vector"))
    op.create_check_constraint("embedding_spaces_storage", "embedding_spaces", "storage IN ('vector', 'halfvec')")
    op.alter_column("chunk_embeddings", "embedding", nullable=True)
    op.add_column("chunk_embeddings", sa.Column("embedding_half", pgvector.sqlalchemy.HALFVEC(), nullable=True))
    op.create_check_constraint("chunk_embeddings_one_vector", "chunk_embeddings",
                               "(embedding IS NULL) <> (embedding_half IS NULL)")
    op.execute(CHUNK_OVERVIEW.format(embedding="coalesce(e.embedding, e.embedding_half::vector)"))


def downgrade() -> None:
    op.execute(CHUNK_OVERVIEW.format(embedding="e.embedding"))
    op.execute("DELETE FROM chunk_embeddings WHERE embedding IS NULL")
    op.drop_constraint("chunk_embeddings_one_vector", "chunk_embeddings")
    op.drop_column("chunk_embeddings", "embedding_half")
    op.alter_column("chunk_embeddings", "embedding", nullable=False)
    op.drop_constraint("embedding_spaces_storage", "embedding_spaces")
    op.drop_column("embedding_spaces", "storage")
    op.drop_column("embedding_spaces", "truncate_dim")
