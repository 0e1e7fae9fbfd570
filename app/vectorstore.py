"""pgrag as a LangChain ``VectorStore``: the door most LangChain users knock on.

Each text is one document of one collection, stored whole as one chunk (texts given to a vector store are
already chunks); its id is the document's source, so adding an id again replaces that document and adding the
same text again is a no-op. Search is pgrag's hybrid search by default (``search_type`` dense or lexical selects
one leg), with the collection's embedding-model guard: a collection built with another model is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from pgrag.config import SearchMode, Settings
from pgrag.db.search import Hit
from pgrag.errors import InvalidInput, UnknownCollection
from pgrag.kb import KnowledgeBase


class PgragVectorStore(VectorStore):
    def __init__(self, embedding: Embeddings | None = None, *, collection: str | None = None,
                 knowledge_base: KnowledgeBase | None = None, settings: Settings | None = None,
                 search_type: SearchMode = "hybrid") -> None:
        """``embedding``: any LangChain embeddings (default: the configured provider); ``knowledge_base``: an open
        one to share (else one is opened from ``settings``, and ``close()`` closes it)."""
        if knowledge_base is not None and embedding is not None:
            raise InvalidInput("Give either embedding or knowledge_base (open it with embeddings=...), not both.")
        self._owned = knowledge_base is None
        self.kb = knowledge_base or KnowledgeBase(settings, embeddings=embedding)
        self.collection = collection or self.kb.settings.collection
        self.search_type: SearchMode = search_type

    @property
    def embeddings(self) -> Embeddings:
        return self.kb.models.embeddings.base

    def close(self) -> None:
        if self._owned:
            self.kb.close()

    def __enter__(self) -> PgragVectorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------------------------------
    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                  ids: list[str | None] | None = None, **kwargs: Any) -> list[str]:
        texts = list(texts)
        given = list(ids) if ids is not None else [None] * len(texts)
        ids_out = [str(i) if i is not None else str(uuid.uuid4()) for i in given]
        metadatas = metadatas or [{} for _ in texts]
        if not len(texts) == len(ids_out) == len(metadatas):
            raise InvalidInput("texts, metadatas and ids must have the same length.")
        documents = [Document(text, metadata={**(metadata or {}), "source": id_})
                     for text, metadata, id_ in zip(texts, metadatas, ids_out)]
        report = self.kb.ingest_documents(documents, collection=self.collection, split=False)
        if report.failed:
            raise InvalidInput("Could not add: " + "; ".join(f"{name}: {reason}" for name, reason in report.failed))
        return ids_out

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete these documents (missing ones are ignored), or every document of the collection."""
        try:
            if ids is None:
                ids = [row["source"] for row in self.kb.documents(collection=self.collection)]
            for id_ in ids:
                self.kb.delete(id_, collection=self.collection)
        except UnknownCollection:  # nothing added yet: nothing to delete
            pass
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        try:
            return self.kb.get_documents(list(ids), collection=self.collection)
        except UnknownCollection:
            return []

    # -- searching ------------------------------------------------------------------------------------------------
    def _hits(self, query: str, k: int, filter: dict[str, Any] | None, mode: SearchMode | None = None) -> list[Hit]:
        try:
            return self.kb.search_hits(query, collection=self.collection, mode=mode or self.search_type, k=k,
                                       filter=filter)
        except UnknownCollection:  # nothing added yet: an empty store
            return []

    def similarity_search(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                          **kwargs: Any) -> list[Document]:
        return [_document(hit) for hit in self._hits(query, k, filter)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """Scores: cosine similarity (dense), BM25 (lexical), or the fused score (hybrid); higher is better."""
        key = {"dense": "dense_score", "lexical": "lexical_score"}.get(self.search_type)
        return [(_document(hit), float(hit.scores[key] if key else hit.score)) for hit in self._hits(query, k, filter)]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: dict[str, Any] | None = None, **kwargs: Any) -> list[Document]:
        """The dense leg's ``fetch_k`` nearest, of which ``k`` are chosen for relevance and diversity."""
        hits = self._hits(query, fetch_k, filter, mode="dense")
        if not hits:
            return []
        query_vector = np.array(self.kb.models.embeddings.embed_query(query))
        stored = self.kb.vectors([hit.chunk_id for hit in hits], collection=self.collection)
        chosen = maximal_marginal_relevance(query_vector, [stored[hit.chunk_id] for hit in hits], lambda_mult, k)
        return [_document(hits[i]) for i in chosen]

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict] | None = None, *,
                   ids: list[str] | None = None, collection: str | None = None, **kwargs: Any) -> PgragVectorStore:
        store = cls(embedding, collection=collection, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store


def _document(hit: Hit) -> Document:
    """A hit as the document that was added: its text, its metadata as given, its id."""
    return Document(hit.content, metadata=hit.metadata, id=hit.source)
