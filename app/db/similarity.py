"""Embeddings beyond search: the neighbours of a chunk or a document, near-duplicate pairs, and outliers.

All of it is SQL over the stored vectors, each nearest-neighbour probe going through the space's HNSW index
(a LATERAL subquery per chunk for the whole-collection scans), so no vector is loaded into Python.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pgrag.db.spaces import Space

# Neighbours probed per chunk by the whole-collection scans: a near-duplicate is among a chunk's nearest few,
# and an outlier is far from all of them.
NEIGHBOURS = 5


def _rows(conn: sa.Connection, space: Space, template: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    # {vec} and {cast} are fixed names derived from the space (see Space.column), never user text.
    statement = template.format(vec=f"{space.column}::{space.vector_cast}", cast=space.vector_cast)
    return [dict(row) for row in conn.execute(sa.text(statement), {"space_id": space.id, **params}).mappings()]


def similar_to_chunk(conn: sa.Connection, space: Space, chunk_id: int, k: int) -> list[dict[str, Any]]:
    """The ``k`` chunks of other documents nearest to one chunk."""
    return _rows(conn, space, """
        SELECT c.id AS chunk_id, d.source, c.content, 1 - n.distance AS similarity
        FROM chunk_embeddings me
        JOIN chunks mine ON mine.id = me.chunk_id
        CROSS JOIN LATERAL (
          SELECT e.chunk_id, e.{vec} <=> me.{vec} AS distance FROM chunk_embeddings e
          WHERE e.space_id = :space_id ORDER BY e.{vec} <=> me.{vec} LIMIT :probe
        ) n
        JOIN chunks c ON c.id = n.chunk_id
        JOIN documents d ON d.id = c.document_id
        WHERE me.space_id = :space_id AND me.chunk_id = :chunk_id AND c.document_id <> mine.document_id
        ORDER BY n.distance
        LIMIT :k""", {"chunk_id": chunk_id, "k": k, "probe": 4 * k + 10})


def similar_to_document(conn: sa.Connection, space: Space, document_id: int, k: int) -> list[dict[str, Any]]:
    """The ``k`` documents nearest to one document (the mean of its chunks' vectors), each at its best chunk."""
    return _rows(conn, space, """
        WITH centre AS (
          SELECT avg(e.{vec})::{cast} AS vector
          FROM chunk_embeddings e JOIN chunks c ON c.id = e.chunk_id
          WHERE e.space_id = :space_id AND c.document_id = :document_id
        ),
        nearest AS (
          SELECT e.chunk_id, e.{vec} <=> (SELECT vector FROM centre) AS distance
          FROM chunk_embeddings e
          WHERE e.space_id = :space_id
          ORDER BY e.{vec} <=> (SELECT vector FROM centre)
          LIMIT :probe
        ),
        best AS (
          SELECT DISTINCT ON (c.document_id) c.id AS chunk_id, d.source, c.content, 1 - n.distance AS similarity
          FROM nearest n JOIN chunks c ON c.id = n.chunk_id JOIN documents d ON d.id = c.document_id
          WHERE c.document_id <> :document_id
          ORDER BY c.document_id, n.distance
        )
        SELECT * FROM best ORDER BY similarity DESC LIMIT :k""",
        {"document_id": document_id, "k": k, "probe": 10 * k + 20})


def duplicate_pairs(conn: sa.Connection, space: Space, threshold: float, limit: int,
                    document_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Pairs of chunks in different documents whose cosine similarity is at least ``threshold``, closest first;
    with ``document_ids``, only pairs with a chunk of those documents (what an ingest just wrote)."""
    return _rows(conn, space, """
        SELECT * FROM (
          SELECT DISTINCT ON (least(a.chunk_id, n.chunk_id), greatest(a.chunk_id, n.chunk_id))
                 a.chunk_id AS chunk_a, da.source AS source_a, n.chunk_id AS chunk_b, db.source AS source_b,
                 1 - n.distance AS similarity, ca.content AS content_a
          FROM chunk_embeddings a
          JOIN chunks ca ON ca.id = a.chunk_id JOIN documents da ON da.id = ca.document_id
          CROSS JOIN LATERAL (
            SELECT b.chunk_id, b.{vec} <=> a.{vec} AS distance FROM chunk_embeddings b
            WHERE b.space_id = :space_id ORDER BY b.{vec} <=> a.{vec} LIMIT :neighbours
          ) n
          JOIN chunks cb ON cb.id = n.chunk_id JOIN documents db ON db.id = cb.document_id
          WHERE a.space_id = :space_id AND n.distance <= 1 - :threshold AND ca.document_id <> cb.document_id
            AND (CAST(:document_ids AS bigint[]) IS NULL OR ca.document_id = ANY(:document_ids))
          ORDER BY least(a.chunk_id, n.chunk_id), greatest(a.chunk_id, n.chunk_id)
        ) pairs
        ORDER BY similarity DESC, chunk_a
        LIMIT :limit""", {"threshold": threshold, "limit": limit, "neighbours": NEIGHBOURS + 1,
                          "document_ids": document_ids})


def outliers(conn: sa.Connection, space: Space, k: int) -> list[dict[str, Any]]:
    """The ``k`` chunks least similar to their nearest neighbours (mean over the nearest few): junk such as
    navigation boilerplate or a mis-parsed page."""
    return _rows(conn, space, """
        SELECT a.chunk_id, d.source, c.content, avg(1 - n.distance) AS neighbour_similarity
        FROM chunk_embeddings a
        CROSS JOIN LATERAL (
          SELECT b.{vec} <=> a.{vec} AS distance FROM chunk_embeddings b
          WHERE b.space_id = :space_id AND b.chunk_id <> a.chunk_id
          ORDER BY b.{vec} <=> a.{vec} LIMIT :neighbours
        ) n
        JOIN chunks c ON c.id = a.chunk_id JOIN documents d ON d.id = c.document_id
        WHERE a.space_id = :space_id
        GROUP BY a.chunk_id, d.source, c.content
        ORDER BY neighbour_similarity, a.chunk_id
        LIMIT :k""", {"k": k, "neighbours": NEIGHBOURS})
