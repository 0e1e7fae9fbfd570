"""Re-embedding a collection under a new model with no downtime.

A new space is built (status ``building``) from the chunk text already stored — no file is re-read — in
committed batches, while searches keep using the active space. A killed run leaves its committed batches, and
running the same command again continues with the chunks still missing. When every chunk has a vector, one
transaction retires the old space and activates the new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.db import spaces, store
from app.db.models import chunk_embeddings, chunks, collections, embedding_spaces
from app.providers.embeddings import EmbeddingSpec, load_embeddings


class ReindexInProgress(RuntimeError):
    """Another reindex of the same collection holds its lock."""


@dataclass
class ReindexReport:
    space_id: int
    embedded: int
    seconds: float
    already_active: bool = False

    @property
    def chunks_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0


def reindex(kb: Any, collection: str, spec: EmbeddingSpec, *, storage: str = "vector",
            on_progress: Callable[[int, int], None] = lambda done, total: None) -> ReindexReport:
    started = time.perf_counter()
    engine: sa.Engine = kb.engine
    with engine.connect() as lock_conn:
        collection_id = spaces.collection_id(lock_conn, collection)
        # A session-level advisory lock: released by the server even if this process is killed.
        if not lock_conn.execute(sa.text("SELECT pg_try_advisory_lock(hashtext('pgrag-reindex'), :c)"),
                                 {"c": collection_id}).scalar():
            raise ReindexInProgress(f"Another reindex of collection {collection!r} is running.")
        lock_conn.commit()
        try:
            active = spaces.active_space(lock_conn, collection_id)
            if active is not None and active.spec == spec and active.storage == storage:
                return ReindexReport(active.id, 0, 0.0, already_active=True)
            embeddings = load_embeddings(spec, kb.settings.provider_retries)
            target = _building_space(engine, collection_id, spec, storage, embeddings)
            embeddings.expected_dimension = target.dimension
            embedded = 0
            while True:
                embedded += _fill(engine, target, embeddings, kb.settings.embed_flush_chunks, on_progress)
                if _switch(engine, collection_id, target):
                    break
            store.analyze(engine)
            return ReindexReport(target.id, embedded, time.perf_counter() - started)
        finally:
            lock_conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext('pgrag-reindex'), :c)"),
                              {"c": collection_id})
            lock_conn.commit()


def _building_space(engine: sa.Engine, collection_id: int, spec: EmbeddingSpec, storage: str,
                    embeddings: Any) -> spaces.Space:
    """The unfinished space for this spec (a resumed run), or a new one."""
    with engine.begin() as conn:
        for space in spaces.spaces_of(conn, collection_id):
            if space.status == "building" and space.spec == spec and space.storage == storage:
                return space
        dimension = len(embeddings.embed_query("dimension probe"))
        return spaces.create_space(conn, collection_id, spec, dimension, status="building", storage=storage)


def _missing(space: spaces.Space) -> sa.Select:
    has_vector = sa.exists().where(chunk_embeddings.c.chunk_id == chunks.c.id,
                                   chunk_embeddings.c.space_id == space.id)
    return sa.select(chunks.c.id, chunks.c.content).where(chunks.c.collection_id == space.collection_id, ~has_vector)


def _fill(engine: sa.Engine, space: spaces.Space, embeddings: Any, batch: int,
          on_progress: Callable[[int, int], None]) -> int:
    """Embed the chunks that have no vector in ``space`` yet, committing batch by batch."""
    embedded = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(_missing(space).order_by(chunks.c.id).limit(batch)).all()
            total = conn.execute(sa.select(collections.c.chunk_count)
                                 .where(collections.c.id == space.collection_id)).scalar_one()
        if not rows:
            return embedded
        vectors = embeddings.embed_documents([row.content for row in rows])
        with engine.begin() as conn:
            # Chunks deleted meanwhile have no row to point at; keep the ones that still exist.
            alive = set(conn.execute(sa.select(chunks.c.id).where(chunks.c.id.in_([r.id for r in rows]))).scalars())
            pairs = [(row.id, vector) for row, vector in zip(rows, vectors, strict=True) if row.id in alive]
            store.write_vectors(conn, space, [p[0] for p in pairs], [p[1] for p in pairs])
            done = conn.execute(sa.select(sa.func.count()).where(chunk_embeddings.c.space_id == space.id)).scalar_one()
        embedded += len(pairs)
        on_progress(done, total)


def _switch(engine: sa.Engine, collection_id: int, target: spaces.Space) -> bool:
    """Retire the active space and activate ``target`` atomically, unless chunks arrived in the meantime."""
    with engine.begin() as conn:
        # Ingest updates this row (BM25 totals), so holding it keeps new chunks out until the switch commits.
        conn.execute(sa.select(collections.c.id).where(collections.c.id == collection_id).with_for_update())
        if conn.execute(_missing(target).limit(1)).first() is not None:
            return False
        conn.execute(embedding_spaces.update()
                     .where(embedding_spaces.c.collection_id == collection_id, embedding_spaces.c.status == "active")
                     .values(status="retired"))
        conn.execute(embedding_spaces.update().where(embedding_spaces.c.id == target.id).values(status="active"))
    return True


def drop_retired(engine: sa.Engine, collection: str) -> int:
    """Delete the vectors and HNSW indexes of a collection's retired spaces; the space rows stay as history."""
    dropped = 0
    with engine.begin() as conn:
        collection_id = spaces.collection_id(conn, collection)
        for space in spaces.spaces_of(conn, collection_id):
            if space.status == "retired":
                dropped += conn.execute(chunk_embeddings.delete()
                                        .where(chunk_embeddings.c.space_id == space.id)).rowcount
                conn.execute(sa.text(f"DROP INDEX IF EXISTS {space.index_name}"))
    return dropped


def space_rows(engine: sa.Engine, collection: str | None) -> list[dict[str, Any]]:
    """Every space (of one collection, or all) with its status and vector count."""
    with engine.connect() as conn:
        query = sa.text(
            "SELECT collection, space_id, model, dimension, status, vectors, chunks FROM space_overview "
            + ("WHERE collection = :c " if collection else "") + "ORDER BY collection, space_id")
        return [dict(row) for row in conn.execute(query, {"c": collection}).mappings()]
