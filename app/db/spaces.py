"""Collections and embedding spaces: which model built which vectors, and the guard against mixing models."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.db.models import collections, embedding_spaces
from app.providers import ProviderSpec

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

    @property
    def spec(self) -> ProviderSpec:
        return ProviderSpec(self.provider, self.model)

    @property
    def vector_cast(self) -> str:
        """The cast that this space's HNSW index is built on; queries must repeat it to use the index."""
        kind = "vector" if self.dimension <= MAX_VECTOR_INDEX_DIM else "halfvec"
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


def create_space(conn: sa.Connection, collection: int, spec: ProviderSpec, dimension: int, status: str) -> Space:
    row = conn.execute(
        embedding_spaces.insert()
        .values(collection_id=collection, provider=spec.provider, model=spec.model, dimension=dimension, status=status)
        .returning(embedding_spaces)
    ).mappings().one()
    space = _space(row)
    opclass = "halfvec_cosine_ops" if space.vector_cast.startswith("halfvec") else "vector_cosine_ops"
    # Identifiers and the dimension come from integers above, never from user text.
    conn.execute(sa.text(
        f"CREATE INDEX {space.index_name} ON chunk_embeddings USING hnsw "
        f"((embedding::{space.vector_cast}) {opclass}) WHERE space_id = {int(space.id)}"
    ))
    return space


def check_matches(space: Space, configured: ProviderSpec, collection_name: str) -> None:
    if (space.provider, space.model) != (configured.provider, configured.model):
        raise EmbeddingModelMismatch(
            f"Collection {collection_name!r} was embedded with {space.spec} ({space.dimension} dimensions), but "
            f"the configured embedding model is {configured}. Queries and documents must use the same model: set "
            f"PGRAG_EMBEDDINGS={space.spec}, or use another collection for {configured}."
        )


def _space(row: sa.RowMapping) -> Space:
    return Space(**{field: row[field] for field in Space.__dataclass_fields__})
