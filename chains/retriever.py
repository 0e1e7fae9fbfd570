"""The pgrag retriever: the knowledge base's retrieval service as a LangChain ``BaseRetriever``."""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from pgrag.retrieval import Retrieval, SearchOptions


class PgRetriever(BaseRetriever):
    """Searches as ``options`` say (collection, mode, k, filter, rerank, expansion; unset ones follow settings)."""

    retrieval: Retrieval
    options: SearchOptions = SearchOptions()

    model_config = {"arbitrary_types_allowed": True}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self.retrieval.documents(query, self.options)
