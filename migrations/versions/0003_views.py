"""Views for people reading the store with plain SQL (see docs/sql.md).

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

VIEWS = {
    "chunk_overview": """
        SELECT ch.id AS chunk_id, col.name AS collection, d.source, ch.ordinal, ch.content, ch.metadata,
               s.id AS space_id, s.provider || ':' || s.model AS model, s.dimension, s.status AS space_status,
               e.embedding
        FROM chunks ch
        JOIN documents d ON d.id = ch.document_id
        JOIN collections col ON col.id = ch.collection_id
        LEFT JOIN chunk_embeddings e ON e.chunk_id = ch.id
        LEFT JOIN embedding_spaces s ON s.id = e.space_id""",
    "document_overview": """
        SELECT col.name AS collection, d.source, d.metadata ->> 'title' AS title, count(ch.id) AS chunks,
               d.content_hash, d.created_at, d.updated_at
        FROM documents d
        JOIN collections col ON col.id = d.collection_id
        LEFT JOIN chunks ch ON ch.document_id = d.id
        GROUP BY col.name, d.id""",
    "space_overview": """
        SELECT col.name AS collection, s.id AS space_id, s.provider || ':' || s.model AS model, s.dimension,
               s.distance, s.status, s.created_at,
               (SELECT count(*) FROM chunk_embeddings e WHERE e.space_id = s.id) AS vectors,
               col.chunk_count AS chunks
        FROM embedding_spaces s JOIN collections col ON col.id = s.collection_id""",
}


def upgrade() -> None:
    for name, query in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {query}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW {name}")
