"""The schema as SQLAlchemy tables: what Alembic migrates and what docs/schema.md documents.

Embeddings have no fixed dimension in the column; each embedding space gets its own partial HNSW index on a
cast to its dimension (see ``app.db.spaces``), so one table holds vectors of several models.
"""

import sqlalchemy as sa
from pgvector.sqlalchemy import HALFVEC, Vector
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

# Stemming and stop words for full-text search; fixed because it is baked into the chunks_index_text trigger.
TEXT_SEARCH_CONFIG = "english"

metadata = sa.MetaData()

collections = sa.Table(
    "collections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    # BM25 statistics, kept current by the chunks_bm25_stats triggers.
    sa.Column("chunk_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("token_count", sa.BigInteger, nullable=False, server_default="0"),
    # The average length posting impacts are bucketed with, frozen at the first write (migration 0009) or at a
    # bulk load's rebuild (0011).
    sa.Column("impact_avgdl", sa.REAL, nullable=True),
    # Set by a bulk load: postings and document frequencies wait for pgrag_rebuild_postings (migration 0011).
    sa.Column("postings_deferred", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

embedding_spaces = sa.Table(
    "embedding_spaces",
    metadata,
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("truncate_dim", sa.Integer, nullable=True),  # Matryoshka truncation, None for the native size
    sa.Column("storage", sa.Text, nullable=False, server_default="vector"),  # vector (float4) or halfvec (float2)
    sa.CheckConstraint("status IN ('building', 'active', 'retired')", name="embedding_spaces_status"),
    sa.CheckConstraint("storage IN ('vector', 'halfvec')", name="embedding_spaces_storage"),
    sa.CheckConstraint("dimension > 0", name="embedding_spaces_dimension"),
    sa.Index(
        "embedding_spaces_one_active",
        "collection_id",
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    ),
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("collection_id", "source", name="documents_collection_source"),
)

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("document_id", sa.BigInteger, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # what search shows and answers quote
    # Document title and heading path ("os > Files and Directories"), indexed and embedded with the content.
    sa.Column("context", sa.Text, nullable=False, server_default=""),
    sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
    # to_tsvector(context || ' ' || content) and the BM25 document length (tokens kept after stop words), both set
    # by the chunks_index_text trigger from one parse (migration 0010).
    sa.Column("tsv", TSVECTOR, nullable=False),
    sa.Column("token_count", sa.Integer, nullable=False),
    sa.Index("chunks_tsv", "tsv", postgresql_using="gin"),
    sa.Index("chunks_metadata", "metadata", postgresql_using="gin", postgresql_ops={"metadata": "jsonb_path_ops"}),
    sa.Index("chunks_collection", "collection_id"),
)

chunk_embeddings = sa.Table(
    "chunk_embeddings",
    metadata,
    sa.Column("space_id", sa.Integer, sa.ForeignKey("embedding_spaces.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("chunk_id", sa.BigInteger, sa.ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True),
    # Exactly one of the two is set, as the space's storage says.
    sa.Column("embedding", Vector(), nullable=True),
    sa.Column("embedding_half", HALFVEC(), nullable=True),
    sa.Index("chunk_embeddings_chunk", "chunk_id"),
    sa.CheckConstraint("(embedding IS NULL) <> (embedding_half IS NULL)", name="chunk_embeddings_one_vector"),
)

lexeme_stats = sa.Table(
    "lexeme_stats",
    metadata,
    sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("lexeme", sa.Text, primary_key=True),
    sa.Column("doc_freq", sa.Integer, nullable=False),
    sa.Column("id", sa.Integer, sa.Identity(always=True), nullable=False, unique=True),  # the term's number
)

posting_blocks = sa.Table(
    "posting_blocks",
    metadata,
    # The inverted index BM25 reads (migration 0009): a term's chunk ids grouped by quantised BM25 impact and by
    # range of ids, read best bucket first.
    sa.Column("term_id", sa.Integer, nullable=False),  # lexeme_stats.id
    sa.Column("bucket", sa.SmallInteger, nullable=False),
    sa.Column("block", sa.Integer, nullable=False),
    sa.Column("chunk_ids", ARRAY(sa.BigInteger), nullable=False),
    sa.Index("posting_blocks_key", "term_id", sa.text("bucket DESC"), "block", unique=True),
)
