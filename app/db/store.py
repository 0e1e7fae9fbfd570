"""Writes and bookkeeping: documents replaced whole in one transaction, chunks and vectors bulk-loaded with COPY."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from pgvector import Vector

from pgrag.db.models import chunks, collections, documents
from pgrag.db.spaces import Space


# A bulk load leaves planner statistics stale until autovacuum catches up, and until then hybrid queries on the
# new rows can take 10x longer (measured: 196 ms vs 20 ms p50), so large writes refresh them at once.
ANALYZE_AFTER_CHUNKS = 500


class ChunkText(Protocol):
    """What the store needs of a chunk (ingest's ``Chunk`` is one)."""

    text: str
    context: str
    metadata: dict[str, Any]


def analyze(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE chunks, posting_blocks, chunk_embeddings, lexeme_stats"))


def lock_collection(conn: sa.Connection, collection_id: int) -> None:
    """Every writer of a collection takes its row first, for the rest of its transaction. The statistics
    triggers update that row anyway; taking it before any document row makes concurrent writers lock in one
    order (no deadlock) and each sees what the one before it committed (no duplicate source)."""
    conn.execute(sa.select(collections.c.id).where(collections.c.id == collection_id).with_for_update())


def defer_postings(conn: sa.Connection, collection_id: int) -> None:
    """Leave the collection's postings and document frequencies to ``rebuild_deferred_postings``: a bulk load
    builds them once, sorted, instead of upserting them batch by batch (docs/scale.md)."""
    conn.execute(collections.update().where(collections.c.id == collection_id).values(postings_deferred=True))


def rebuild_deferred_postings(engine: sa.Engine, collection_id: int) -> None:
    """Build the postings a bulk load deferred (or one that was killed left out); nothing if none are. Every
    ingest ends here, so the writers' lock is taken only when there is something to build."""
    with engine.begin() as conn:
        deferred = sa.select(collections.c.postings_deferred).where(collections.c.id == collection_id)
        if not conn.execute(deferred).scalar():
            return
        lock_collection(conn, collection_id)
        conn.execute(sa.text("SELECT pgrag_rebuild_postings(id) FROM collections "
                             "WHERE id = :id AND postings_deferred"), {"id": collection_id})


def existing_hashes(conn: sa.Connection, collection_id: int, sources: Sequence[str] | None = None) -> dict[str, str]:
    """Content hash by source, of the whole collection or of these sources."""
    query = sa.select(documents.c.source, documents.c.content_hash).where(documents.c.collection_id == collection_id)
    if sources is not None:
        query = query.where(documents.c.source.in_(sources))
    return dict(conn.execute(query).all())


class NewDocument(Protocol):
    """What the store needs of a document to write (ingest's ``PreparedDocument`` is one)."""

    source: str
    content_hash: str
    metadata: dict[str, Any]
    chunks: Sequence[ChunkText]


def replace_documents(conn: sa.Connection, collection_id: int, space: Space,
                      batch: Sequence[tuple[NewDocument, Sequence[Sequence[float]]]]) -> None:
    """Replace the documents at these sources with new chunks and vectors. Call inside a transaction: readers
    see the old versions or the new ones, never a mix, and a crash leaves the old ones. Each table gets one
    statement for the whole batch, so the triggers that keep the BM25 statistics and postings run once per
    batch, with their writes sorted, instead of once per document."""
    if not batch:
        return
    delete_documents(conn, collection_id, [doc.source for doc, _ in batch])
    document_ids = conn.execute(
        documents.insert().returning(documents.c.id, sort_by_parameter_order=True),
        [{"collection_id": collection_id, "source": doc.source, "content_hash": doc.content_hash,
          "metadata": doc.metadata} for doc, _ in batch],
    ).scalars().all()
    chunk_ids = conn.execute(
        sa.text("SELECT nextval(pg_get_serial_sequence('chunks', 'id')) FROM generate_series(1, :n)"),
        {"n": sum(len(doc.chunks) for doc, _ in batch)},
    ).scalars().all()
    next_id = iter(chunk_ids)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy("COPY chunks (id, document_id, collection_id, ordinal, content, context, metadata) "
                     "FROM STDIN") as copy:
        for (doc, _), document_id in zip(batch, document_ids, strict=True):
            for ordinal, chunk in enumerate(doc.chunks):
                copy.write_row((next(next_id), document_id, collection_id, ordinal, chunk.text, chunk.context,
                                json.dumps({**doc.metadata, **chunk.metadata})))
    write_vectors(conn, space, chunk_ids, [vector for _, vectors in batch for vector in vectors])


def write_vectors(conn: sa.Connection, space: Space, chunk_ids: Sequence[int],
                  vectors: Sequence[Sequence[float]]) -> None:
    """Bulk-load one space's vectors with COPY, into the column its storage uses."""
    cursor = conn.connection.driver_connection.cursor()
    # space.column is one of two fixed names (see Space.column), never user text.
    with cursor.copy(f"COPY chunk_embeddings (space_id, chunk_id, {space.column}) FROM STDIN") as copy:
        for chunk_id, vector in zip(chunk_ids, vectors, strict=True):
            # pgvector's text form parses into either column type (vector or halfvec).
            copy.write_row((space.id, chunk_id, Vector(vector).to_text()))


def document_id(conn: sa.Connection, collection_id: int, source: str) -> int | None:
    return conn.execute(sa.select(documents.c.id).where(
        documents.c.collection_id == collection_id, documents.c.source == source)).scalar()


def delete_documents(conn: sa.Connection, collection_id: int, sources: Sequence[str]) -> int:
    """Delete the documents at these sources; returns how many there were. Their chunks go in one statement
    (a cascade from ``documents`` would run the statistics triggers once per document)."""
    ids = sa.select(documents.c.id).where(documents.c.collection_id == collection_id,
                                          documents.c.source.in_(list(sources)))
    conn.execute(chunks.delete().where(chunks.c.document_id.in_(ids)))
    return conn.execute(documents.delete().where(documents.c.id.in_(ids))).rowcount


def list_collections(conn: sa.Connection) -> list[dict[str, Any]]:
    document_count = (
        sa.select(sa.func.count()).where(documents.c.collection_id == collections.c.id).scalar_subquery()
    )
    rows = conn.execute(
        sa.select(collections.c.name, collections.c.chunk_count, document_count.label("documents"))
        .order_by(collections.c.name)
    ).mappings()
    return [dict(row) for row in rows]


def list_documents(conn: sa.Connection, collection_id: int) -> list[dict[str, Any]]:
    chunk_count = sa.select(sa.func.count()).where(chunks.c.document_id == documents.c.id).scalar_subquery()
    rows = conn.execute(
        sa.select(documents.c.source, documents.c.updated_at, chunk_count.label("chunks"))
        .where(documents.c.collection_id == collection_id)
        .order_by(documents.c.source)
    ).mappings()
    return [dict(row) for row in rows]


def documents_by_source(conn: sa.Connection, collection_id: int, sources: Sequence[str]) -> list[dict[str, Any]]:
    """Source, metadata and the chunks' text joined in order, for the documents with these sources."""
    rows = conn.execute(sa.text("""
        SELECT d.source, d.metadata, string_agg(c.content, E'\\n' ORDER BY c.ordinal) AS content
        FROM documents d JOIN chunks c ON c.document_id = d.id
        WHERE d.collection_id = :collection_id AND d.source = ANY(:sources)
        GROUP BY d.id"""), {"collection_id": collection_id, "sources": list(sources)}).mappings()
    return [dict(row) for row in rows]


def vectors(conn: sa.Connection, space: Space, chunk_ids: Sequence[int]) -> dict[int, list[float]]:
    """The stored vectors of these chunks in ``space``."""
    rows = conn.execute(sa.text(
        f"SELECT chunk_id, {space.column}::text AS vector FROM chunk_embeddings "  # a fixed column name
        "WHERE space_id = :space_id AND chunk_id = ANY(:ids)"), {"space_id": space.id, "ids": list(chunk_ids)})
    return {row.chunk_id: Vector.from_text(row.vector).to_list() for row in rows}


def sample_chunks(conn: sa.Connection, collection_id: int, n: int, seed: int, min_chars: int) -> list[dict[str, Any]]:
    """``n`` chunks of at least ``min_chars`` characters, the same ones for the same seed (and a larger ``n``
    extends a smaller one's sample): ordered by a hash of the chunk id and the seed."""
    return [dict(row) for row in conn.execute(sa.text("""
        SELECT c.id AS chunk_id, d.source, c.content
        FROM chunks c JOIN documents d ON d.id = c.document_id
        WHERE c.collection_id = :collection_id AND length(c.content) >= :min_chars
        ORDER BY md5(c.id::text || ':' || :seed), c.id
        LIMIT :n"""), {"collection_id": collection_id, "n": n, "seed": str(seed), "min_chars": min_chars}).mappings()]
