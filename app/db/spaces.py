"""Collections and embedding spaces: which model built which vectors, and the guard against mixing models."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.db.models import collections, embedding_spaces
from app.providers.embeddings import EmbeddingSpec

# pgvector's HNSW indexes vectors up to 2000 dimensions; larger ones are indexed through a halfvec cast.
MAX_VECTOR_INDEX_DIM = 2000


class EmbeddingModelMismatch(RuntimeError):
    """The configured embedding model is not the one that built the collection's vectors."""


class UnknownCollection(LookupError):
    """Asked to read a collection that does not exist."""


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


def collection_id(conn: sa.Connection, name: str, *, create: bool = False) -> int:
    found = conn.execute(sa.select(collections.c.id).where(collections.c.name == name)).scalar()
    if found is not None:
        return found
    if not create:
        raise UnknownCollection(f"No collection named {name!r}. Ingest into it first: pgrag ingest PATH --collection {name}")
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


def create_space(conn: sa.Connection, collection: int, spec: EmbeddingSpec, dimension: int, status: str,
                 storage: str = "vector") -> Space:
    row = conn.execute(
        embedding_spaces.insert()
        .values(collection_id=collection, provider=spec.provider, model=spec.model, dimension=dimension,
                status=status, truncate_dim=spec.dimensions, query_prefix=spec.query_prefix,
                document_prefix=spec.document_prefix, storage=storage)
        .returning(embedding_spaces)
    ).mappings().one()
    space = _space(row)
    opclass = "halfvec_cosine_ops" if space.vector_cast.startswith("halfvec") else "vector_cosine_ops"
    # Identifiers and the dimension come from integers and fixed names above, never from user text.
    conn.execute(sa.text(
        f"CREATE INDEX {space.index_name} ON chunk_embeddings USING hnsw "
        f"(({space.column}::{space.vector_cast}) {opclass}) WHERE space_id = {int(space.id)}"
    ))
    return space


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
