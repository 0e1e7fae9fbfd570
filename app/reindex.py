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

import sqlalchemy as sa

from pgrag.config import Settings
from pgrag.db import spaces, store
from pgrag.errors import ReindexInProgress
from pgrag.ingest.splitting import indexed_text
from pgrag.providers.embeddings import SpaceEmbeddings, load_embeddings
from pgrag.specs import EmbeddingSpec

Progress = Callable[[int, int], None]


@dataclass
class ReindexReport:
    space_id: int
    embedded: int
    seconds: float
    already_active: bool = False

    @property
    def chunks_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0


def reindex(engine: sa.Engine, settings: Settings, collection: str, spec: EmbeddingSpec, *,
            storage: str = "vector", on_progress: Progress = lambda done, total: None) -> ReindexReport:
    started = time.perf_counter()
    with engine.connect() as lock_conn:
        collection_id = spaces.collection_id(lock_conn, collection)
        if not spaces.try_lock_reindex(lock_conn, collection_id):
            raise ReindexInProgress(f"Another reindex of collection {collection!r} is running; wait for it, or "
                                    "stop it and run this command again to resume.")
        lock_conn.commit()
        try:
            active = spaces.active_space(lock_conn, collection_id)
            if active is not None and active.spec == spec and active.storage == storage:
                return ReindexReport(active.id, 0, 0.0, already_active=True)
            embeddings = load_embeddings(spec, settings)
            with engine.begin() as conn:
                target = spaces.building_space(conn, collection_id, spec, storage) or spaces.create_space(
                    conn, collection_id, spec, len(embeddings.embed_query("dimension probe")), status="building",
                    storage=storage)
            embeddings = embeddings.for_space(target.dimension)
            embedded = 0
            while True:
                embedded += _fill(engine, target, embeddings, settings.embed_flush_chunks, on_progress)
                with engine.begin() as conn:
                    if spaces.activate(conn, collection_id, target):
                        break
            store.analyze(engine)
            return ReindexReport(target.id, embedded, time.perf_counter() - started)
        finally:
            spaces.unlock_reindex(lock_conn, collection_id)
            lock_conn.commit()


def _fill(engine: sa.Engine, space: spaces.Space, embeddings: SpaceEmbeddings, batch: int,
          on_progress: Progress) -> int:
    """Embed the chunks that have no vector in ``space`` yet, committing batch by batch."""
    embedded = 0
    while True:
        with engine.connect() as conn:
            rows = spaces.chunks_without_vector(conn, space, batch)
            total = spaces.chunk_total(conn, space.collection_id)
        if not rows:
            return embedded
        vectors = embeddings.embed_documents([indexed_text(row.context, row.content) for row in rows])
        with engine.begin() as conn:
            alive = spaces.existing_chunks(conn, [row.id for row in rows])
            pairs = [(row.id, vector) for row, vector in zip(rows, vectors, strict=True) if row.id in alive]
            store.write_vectors(conn, space, [p[0] for p in pairs], [p[1] for p in pairs])
            done = spaces.vector_count(conn, space)
        embedded += len(pairs)
        on_progress(done, total)
