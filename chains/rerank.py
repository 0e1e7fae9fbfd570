"""Cross-encoder reranking as a LangChain document compressor that keeps the scores it computes."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_community.cross_encoders import BaseCrossEncoder
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document


class CrossEncoderReranker(BaseDocumentCompressor):
    """Like ``langchain_classic``'s CrossEncoderReranker, but records each score in ``metadata["scores"]["rerank"]``
    so callers can show it and judge whether the best passage is good enough."""

    model: BaseCrossEncoder
    top_n: int = 5

    model_config = {"arbitrary_types_allowed": True}

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        scores = self.model.score([(query, doc.page_content) for doc in documents])
        ranked = sorted(zip(documents, scores), key=lambda pair: float(pair[1]), reverse=True)[: self.top_n]
        return [
            Document(
                page_content=doc.page_content,
                metadata={**doc.metadata, "scores": {**doc.metadata.get("scores", {}), "rerank": float(score)}},
                id=doc.id,
            )
            for doc, score in ranked
        ]
