"""Collections and embedding spaces: which model built which vectors, and the guard against mixing models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pgrag.db.models import chunk_embeddings, chunks, collections, embedding_spaces
from pgrag import validation
from pgrag.errors import EmbeddingModelMismatch, UnknownCollection
from pgrag.specs import EmbeddingSpec

# pgvector's HNSW indexes vectors up to 2000 dimensions; larger ones are indexed through a halfvec cast.
MAX_VECTOR_INDEX_DIM = 2000
# Memory for an HNSW build: a graph that does not fit is built on disk, much more slowly (1M 384-d vectors ~ 2 GB).
# It is a cap: the build takes only what its graph needs.
INDEX_BUILD_MEMORY = "2GB"


@dataclass(frozen=True)
class Space:
    id: int
    collection_id: int
    provider: str
    model: str
    dimension: int
    distance: str
    status: str
    truncate_dim: int | None
    query_prefix: str
    document_prefix: str
    storage: str

    @property
    def spec(self) -> EmbeddingSpec:
        return EmbeddingSpec(self.provider, self.model, self.truncate_dim, self.query_prefix, self.document_prefix)

    @property
    def column(self) -> str:
        """The chunk_embeddings column holding this space's vectors."""
        return "embedding_half" if self.storage == "halfvec" else "embedding"

    @property
    def vector_cast(self) -> str:
        """The cast that this space's HNSW index is built on; queries must repeat it to use the index."""
        kind = "halfvec" if self.storage == "halfvec" or self.dimension > MAX_VECTOR_INDEX_DIM else "vector"
        return f"{kind}({int(self.dimension)})"

    @property
    def index_name(self) -> str:
        return f"chunk_embeddings_space_{int(self.id)}_hnsw"


def find_collection(conn: sa.Connection, name: str) -> int | None:
    return conn.execute(sa.select(collections.c.id).where(collections.c.name == name)).scalar()


def collection_id(conn: sa.Connection, name: str, *, create: bool = False) -> int:
    validation.text(name, "collection name")
    found = find_collection(conn, name)
    if found is not None:
        return found
    if not create:
        raise _unknown_collection(name)
    stmt = (
        sa.dialects.postgresql.insert(collections)
        .values(name=name)
        .on_conflict_do_update(index_elements=["name"], set_={"name": name})
        .returning(collections.c.id)
    )
    return conn.execute(stmt).scalar_one()


def active_space(conn: sa.Connection, collection: int) -> Space | None:
    row = conn.execute(
        sa.select(embedding_spaces).where(
            embedding_spaces.c.collection_id == collection, embedding_spaces.c.status == "active"
        )
    ).mappings().first()
    return _space(row) if row else None


def active_space_of(conn: sa.Connection, name: str) -> Space | None:
    """The active space of the collection named ``name`` (None before its first ingest) in one round trip, where
    ``collection_id`` and ``active_space`` take two: every search looks it up."""
    validation.text(name, "collection name")
    active = sa.and_(embedding_spaces.c.collection_id == collections.c.id, embedding_spaces.c.status == "active")
    row = conn.execute(
        sa.select(collections.c.id.label("found"), embedding_spaces)
        .select_from(collections.outerjoin(embedding_spaces, active))
        .where(collections.c.name == name)
    ).mappings().first()
    if row is None:
        raise _unknown_collection(name)
    return _space(row) if row["id"] is not None else None


def _unknown_collection(name: str) -> UnknownCollection:
    return UnknownCollection(f"No collection named {name!r}. Ingest into it first: pgrag ingest PATH --collection {name}")


def create_space(conn: sa.Connection, collection: int, spec: EmbeddingSpec, dimension: int, status: str,
                 storage: str = "vector", *, index: bool = True) -> Space:
    """A new space, with its HNSW index unless ``index=False`` (a bulk load builds it afterwards)."""
    row = conn.execute(
        embedding_spaces.insert()
        .values(collection_id=collection, provider=spec.provider, model=spec.model, dimension=dimension,
                status=status, truncate_dim=spec.dimensions, query_prefix=spec.query_prefix,
                document_prefix=spec.document_prefix, storage=storage)
        .returning(embedding_spaces)
    ).mappings().one()
    space = _space(row)
    if index:
        conn.execute(sa.text(_index_ddl(space, "")))
    return space


def _index_ddl(space: Space, concurrently: str) -> str:
    opclass = "halfvec_cosine_ops" if space.vector_cast.startswith("halfvec") else "vector_cosine_ops"
    # Identifiers and the dimension come from integers and fixed names above, never from user text.
    return (f"CREATE INDEX {concurrently} IF NOT EXISTS {space.index_name} ON chunk_embeddings USING hnsw "
            f"(({space.column}::{space.vector_cast}) {opclass}) WHERE space_id = {int(space.id)}")


def drop_vector_index(engine: sa.Engine, space: Space) -> None:
    """Drop a space's HNSW index without blocking other writers; its dense searches scan exactly until
    ``ensure_vector_index`` builds it again."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {space.index_name}"))


def ensure_vector_index(engine: sa.Engine, space: Space) -> None:
    """Build a space's HNSW index if it is missing or invalid (a build that was interrupted), without blocking
    writers. pgvector builds a graph several times faster than it inserts into one (docs/scale.md), given the
    memory to hold it."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        valid = conn.execute(sa.text("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                     "WHERE c.relname = :name"), {"name": space.index_name}).scalar()
        if valid:
            return
        if valid is not None:
            conn.execute(sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {space.index_name}"))
        conn.execute(sa.text(f"SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'"))
        try:
            conn.execute(sa.text(_index_ddl(space, "CONCURRENTLY")))
        finally:  # the pooled connection goes back with the server's default
            conn.execute(sa.text("RESET maintenance_work_mem"))


def spaces_of(conn: sa.Connection, collection: int) -> list[Space]:
    rows = conn.execute(
        sa.select(embedding_spaces).where(embedding_spaces.c.collection_id == collection)
        .order_by(embedding_spaces.c.id)
    ).mappings()
    return [_space(row) for row in rows]


def check_matches(space: Space, configured: EmbeddingSpec, collection_name: str) -> None:
    if space.spec != configured:
        raise EmbeddingModelMismatch(
            f"Collection {collection_name!r} was embedded with {space.spec} ({space.dimension} dimensions), but "
            f"the configured embedding model is {configured}. Queries and documents must use the same model. "
            f"Either set PGRAG_EMBEDDINGS='{space.spec}', or re-embed the collection with the new model: "
            f"pgrag reindex --collection {collection_name} --embeddings '{configured}'"
        )


def _space(row: sa.RowMapping) -> Space:
    return Space(**{field: row[field] for field in Space.__dataclass_fields__})


# -- re-embedding ----------------------------------------------------------------------------------------------
def try_lock_reindex(conn: sa.Connection, collection: int) -> bool:
    """A session-level advisory lock per collection: released by the server even if the process is killed."""
    return bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(hashtext('pgrag-reindex'), :c)"),
                             {"c": collection}).scalar())


def unlock_reindex(conn: sa.Connection, collection: int) -> None:
    conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext('pgrag-reindex'), :c)"), {"c": collection})


def building_space(conn: sa.Connection, collection: int, spec: EmbeddingSpec, storage: str) -> Space | None:
    """The unfinished space for this spec, left by an interrupted reindex."""
    for space in spaces_of(conn, collection):
        if space.status == "building" and space.spec == spec and space.storage == storage:
            return space
    return None


def _missing(space: Space) -> sa.Select:
    has_vector = sa.exists().where(chunk_embeddings.c.chunk_id == chunks.c.id,
                                   chunk_embeddings.c.space_id == space.id)
    return sa.select(chunks.c.id, chunks.c.content, chunks.c.context).where(
        chunks.c.collection_id == space.collection_id, ~has_vector)


def chunks_without_vector(conn: sa.Connection, space: Space, limit: int) -> list[sa.Row]:
    """(id, content, context) of chunks that have no vector in ``space`` yet, in id order."""
    return list(conn.execute(_missing(space).order_by(chunks.c.id).limit(limit)).all())


def chunk_total(conn: sa.Connection, collection: int) -> int:
    return conn.execute(sa.select(collections.c.chunk_count).where(collections.c.id == collection)).scalar_one()


def existing_chunks(conn: sa.Connection, chunk_ids: list[int]) -> set[int]:
    """Which of these chunks still exist (a document may be deleted while it is being re-embedded)."""
    return set(conn.execute(sa.select(chunks.c.id).where(chunks.c.id.in_(chunk_ids))).scalars())


def vector_count(conn: sa.Connection, space: Space) -> int:
    return conn.execute(sa.select(sa.func.count()).where(chunk_embeddings.c.space_id == space.id)).scalar_one()


def activate(conn: sa.Connection, collection: int, target: Space) -> bool:
    """Retire the active space and activate ``target`` atomically, unless chunks arrived in the meantime."""
    # Ingest updates this row (BM25 totals), so holding it keeps new chunks out until the switch commits.
    conn.execute(sa.select(collections.c.id).where(collections.c.id == collection).with_for_update())
    if conn.execute(_missing(target).limit(1)).first() is not None:
        return False
    conn.execute(embedding_spaces.update()
                 .where(embedding_spaces.c.collection_id == collection, embedding_spaces.c.status == "active")
                 .values(status="retired"))
    conn.execute(embedding_spaces.update().where(embedding_spaces.c.id == target.id).values(status="active"))
    return True


def drop_retired(conn: sa.Connection, collection: int) -> int:
    """Delete the vectors and HNSW indexes of a collection's retired spaces; the space rows stay as history."""
    dropped = 0
    for space in spaces_of(conn, collection):
        if space.status == "retired":
            dropped += conn.execute(chunk_embeddings.delete().where(chunk_embeddings.c.space_id == space.id)).rowcount
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {space.index_name}"))
    return dropped


def space_rows(conn: sa.Connection, collection: str | None) -> list[dict[str, Any]]:
    """Every space (of one collection, or all) with its status and vector count."""
    query = sa.text("SELECT collection, space_id, model, dimension, status, vectors, chunks FROM space_overview "
                    + ("WHERE collection = :c " if collection else "") + "ORDER BY collection, space_id")
    return [dict(row) for row in conn.execute(query, {"c": collection}).mappings()]
