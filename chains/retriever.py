"""The pgrag retriever: hybrid search in Postgres, then optional cross-encoder reranking, as a BaseRetriever."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from app.config import SearchMode
from app.db.search import Hit


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


class PgRetriever(BaseRetriever):
    """Searches one collection of a KnowledgeBase; ``rerank`` applies the configured cross-encoder if any."""

    kb: Any
    collection: str | None = None
    mode: SearchMode | None = None
    k: int | None = None
    filter: dict[str, Any] | None = None
    rerank: bool = True

    model_config = {"arbitrary_types_allowed": True}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        k = self.k or self.kb.settings.top_k
        reranker = self.kb.reranker(top_n=k) if self.rerank else None
        fetch = max(k, self.kb.settings.rerank_candidates) if reranker else k
        hits = self.kb.search_hits(query, collection=self.collection, mode=self.mode, k=fetch, filter=self.filter)
        documents = [hit_to_document(hit) for hit in hits]
        if reranker is None:
            return documents
        return list(reranker.compress_documents(documents, query))
