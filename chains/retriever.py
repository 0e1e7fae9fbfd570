"""The pgrag retriever: hybrid search in Postgres, then optional cross-encoder reranking, as a BaseRetriever."""

from __future__ import annotations

from functools import partial
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from app.config import Expansion, SearchMode
from app.db.search import Hit
from chains.expansion import fuse_rankings, hypothetical_document, rewrite_queries


def hit_to_document(hit: Hit) -> Document:
    return Document(
        id=str(hit.chunk_id),
        page_content=hit.content,
        metadata={
            **hit.metadata,
            "source": hit.source,
            "chunk_id": hit.chunk_id,
            "document_id": hit.document_id,
            "ordinal": hit.ordinal,
            "scores": {"fused": hit.score, **hit.scores},
        },
    )


def best_similarity(documents: list[Document]) -> float | None:
    """The highest dense (cosine) similarity among retrieved passages: the retrieval health signal. None when
    no passage has one (lexical-only search), which the health check treats as unknown rather than weak."""
    scores = [doc.metadata.get("scores", {}).get("dense_score") for doc in documents]
    return max((s for s in scores if s is not None), default=None)


def is_weak(documents: list[Document], threshold: float) -> bool:
    best = best_similarity(documents)
    return not documents or (best is not None and best < threshold)


class PgRetriever(BaseRetriever):
    """Searches one collection of a KnowledgeBase; ``rerank`` applies the configured cross-encoder if any."""

    kb: Any
    collection: str | None = None
    mode: SearchMode | None = None
    k: int | None = None
    filter: dict[str, Any] | None = None
    rerank: bool = True
    expansion: Expansion | None = None

    model_config = {"arbitrary_types_allowed": True}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        """The top ``k`` fused results, of which the first ``rerank_candidates`` are reordered by the
        cross-encoder (so a deep ``k``, as evaluation uses, costs no more cross-encoder calls)."""
        k = self.k or self.kb.settings.top_k
        depth = self.kb.settings.rerank_candidates
        reranker = self.kb.reranker(top_n=depth) if self.rerank else None
        fetch = max(k, depth) if reranker else k
        hits = self._search(query, fetch)
        documents = [hit_to_document(hit) for hit in hits]
        if reranker is not None:
            documents = list(reranker.compress_documents(documents[:depth], query)) + documents[depth:]
        return documents[:k]

    def _search(self, query: str, k: int) -> list[Hit]:
        """Run the search, expanding the query first as configured."""
        settings = self.kb.settings
        expansion = self.expansion or settings.expansion
        search = partial(self.kb.search_hits, collection=self.collection, mode=self.mode, k=k, filter=self.filter)
        if expansion == "prf":
            return search(query, feedback=True)
        if expansion == "hyde":
            return search(query, dense_text=hypothetical_document(self.kb.chat_model, query))
        if expansion == "multi-query":
            queries = [query, *rewrite_queries(self.kb.chat_model, query, settings.multi_queries)]
            return fuse_rankings([search(q) for q in queries], settings.rrf_k, k)
        return search(query)
