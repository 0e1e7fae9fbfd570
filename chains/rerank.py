"""Cross-encoder reranking as a LangChain document compressor that keeps the scores it computes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from langchain_community.cross_encoders import BaseCrossEncoder
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document

T = TypeVar("T")


def blend(candidates: Sequence[T], scores: Sequence[float], weight: float | None, rrf_k: float) -> list[T]:
    """Candidates (given in first-stage order) reordered by their cross-encoder ``scores``.

    ``weight=None`` follows the cross-encoder alone. Otherwise its order is fused with the first-stage order by
    reciprocal rank fusion, the cross-encoder's ranks weighted by ``weight``: a cross-encoder that is good but not
    better than hybrid search everywhere then adds what it knows without discarding what the first stage knew."""
    by_score = sorted(range(len(candidates)), key=lambda i: -float(scores[i]))
    if weight is None:
        return [candidates[i] for i in by_score]
    fused = [1.0 / (rrf_k + i + 1) for i in range(len(candidates))]
    for rank, i in enumerate(by_score, 1):
        fused[i] += weight / (rrf_k + rank)
    return [candidates[i] for i in sorted(range(len(candidates)), key=lambda i: (-fused[i], i))]


class CrossEncoderReranker(BaseDocumentCompressor):
    """Like ``langchain_classic``'s CrossEncoderReranker, but records each score in ``metadata["scores"]["rerank"]``
    so callers can show it and judge whether the best passage is good enough, and can blend the cross-encoder's
    order with the first-stage order (see :func:`blend`)."""

    model: BaseCrossEncoder
    top_n: int = 5
    weight: float | None = None
    rrf_k: float = 5.0

    model_config = {"arbitrary_types_allowed": True}

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        scores = self.model.score([(query, doc.page_content) for doc in documents])
        ranked = blend(list(zip(documents, scores)), scores, self.weight, self.rrf_k)[: self.top_n]
        return [
            Document(
                page_content=doc.page_content,
                metadata={**doc.metadata, "scores": {**doc.metadata.get("scores", {}), "rerank": float(score)}},
                id=doc.id,
            )
            for doc, score in ranked
        ]
