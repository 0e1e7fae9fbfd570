"""The knowledge base: the Python entry point that the CLI, the server and scripts all go through.

    from app import KnowledgeBase
    with KnowledgeBase.open() as kb:
        kb.ingest(["docs/"])
        print(kb.search("how are results fused?")[0].metadata["source"])
        print(kb.ask("How does pgrag fuse dense and lexical results?").answer)

Models load lazily and once per KnowledgeBase; the database engine is shared by every call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from app.config import SearchMode, Settings
from app.db import spaces, store
from app.db.engine import create_engine, dispose, ensure_schema
from app.db.search import Hit, SearchParams, feedback_terms, search
from app.ingest import loaders, pipeline
from app.ingest.splitting import Splitter
from app.providers import configure_model_libraries
from app.providers.embeddings import EmbeddingSpec


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[dict[str, Any]]
    sources: list[Document]
    retrieval: dict[str, Any]  # best_similarity, threshold, weak: the retrieval health check


class KnowledgeBase:
    def __init__(self, settings: Settings | None = None, *, connect: bool = True) -> None:
        """``connect=False`` defers starting the database to ``connect()`` (the server does it in its lifespan)."""
        self.settings = settings or Settings()
        configure_model_libraries(self.settings.allow_downloads)
        self._engine: sa.Engine | None = None
        if connect:
            self.connect()

    def connect(self) -> None:
        if self._engine is None:
            engine = create_engine(self.settings)
            try:
                ensure_schema(engine, self.settings)
            except BaseException:
                dispose(engine, self.settings)
                raise
            self._engine = engine

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            raise RuntimeError("The knowledge base is not connected: call connect() first.")
        return self._engine

    @classmethod
    def open(cls, settings: Settings | None = None, **overrides: Any) -> KnowledgeBase:
        """Open with ``settings`` (default: environment and pgrag.toml), overriding any field by keyword."""
        base = settings or Settings()
        return cls(Settings(**{**base.model_dump(), **overrides}) if overrides else base)

    def close(self) -> None:
        if self._engine is not None:
            dispose(self._engine, self.settings)
            self._engine = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- models -------------------------------------------------------------------------------------------------
    @cached_property
    def embedding_spec(self) -> EmbeddingSpec:
        return EmbeddingSpec.parse(self.settings.embeddings)

    @cached_property
    def embeddings(self) -> Embeddings:
        from app.providers.embeddings import load_embeddings

        return load_embeddings(self.embedding_spec, self.settings.provider_retries)

    @cached_property
    def chat_model(self) -> BaseChatModel:
        from app.providers.chat import load_chat_model

        return load_chat_model(self.settings)

    @cached_property
    def _cross_encoder(self) -> Any:
        from app.providers.reranker import load_cross_encoder

        return load_cross_encoder(self.settings)

    @cached_property
    def _blend_weight(self) -> float | None:
        """Resolved once: it reads the model's training record (and, for ``auto``, the model cache)."""
        from app.providers.reranker import blend_weight

        return blend_weight(self.settings)

    def reranker(self, top_n: int) -> Any:
        """The configured cross-encoder as a document compressor keeping ``top_n``, or None when it is off."""
        if self._cross_encoder is None:
            return None
        from chains.rerank import CrossEncoderReranker

        return CrossEncoderReranker(model=self._cross_encoder, top_n=top_n, weight=self._blend_weight,
                                    rrf_k=self.settings.rrf_k)

    # -- ingest -------------------------------------------------------------------------------------------------
    def ingest(
        self,
        paths: Iterable[str | Path],
        *,
        collection: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        on_progress: Callable[[pipeline.IngestReport], None] = lambda report: None,
    ) -> pipeline.IngestReport:
        """Ingest files and folders (recursively). Unchanged files are skipped, changed ones replaced, and a file
        that cannot be read is reported in ``report.failed`` without stopping the others."""
        files = list(loaders.discover([Path(p) for p in paths], include, exclude))
        items = [(str(path), partial(loaders.load, path)) for path in files]
        return self._ingest(items, collection, on_progress)

    def ingest_documents(
        self,
        documents: Iterable[Document],
        *,
        collection: str | None = None,
        on_progress: Callable[[pipeline.IngestReport], None] = lambda report: None,
    ) -> pipeline.IngestReport:
        """Ingest LangChain Documents; each needs a unique ``metadata["source"]``, which identifies it."""
        items = [(str(doc.metadata.get("source")), partial(_loaded_from_document, doc)) for doc in documents]
        return self._ingest(items, collection, on_progress)

    def _ingest(self, items: list[pipeline.LoadItem], collection: str | None,
                on_progress: Callable[[pipeline.IngestReport], None]) -> pipeline.IngestReport:
        name = collection or self.settings.collection
        configured = self.embedding_spec
        with self.engine.begin() as conn:
            collection_id = spaces.collection_id(conn, name, create=True)
            space = spaces.active_space(conn, collection_id)
            if space is None:
                dimension = len(self.embeddings.embed_query("dimension probe"))
                space = spaces.create_space(conn, collection_id, configured, dimension, status="active",
                                            storage=self.settings.embedding_storage)
            spaces.check_matches(space, configured, name)
            self.embeddings.expected_dimension = space.dimension
            known = store.existing_hashes(conn, collection_id)

        def write(batch: list[tuple[pipeline.PreparedDocument, list[list[float]]]]) -> None:
            with self.engine.begin() as conn:
                for doc, vectors in batch:
                    store.replace_document(conn, collection_id, space, doc.source, doc.content_hash, doc.metadata,
                                           doc.chunks, vectors)

        report = pipeline.run(
            items,
            splitter=Splitter(self.settings.chunk_size, self.settings.chunk_overlap),
            embeddings=self.embeddings,
            known=known,
            write=write,
            batch_chunks=self.settings.embed_flush_chunks,
            on_progress=on_progress,
        )
        if report.chunks >= store.ANALYZE_AFTER_CHUNKS:
            store.analyze(self.engine)
        return report

    def delete(self, source: str, *, collection: str | None = None) -> bool:
        """Delete a document by its source (a path is resolved the way ingest names files)."""
        name = collection or self.settings.collection
        with self.engine.begin() as conn:
            collection_id = spaces.collection_id(conn, name)
            return store.delete_document(conn, collection_id, source) or store.delete_document(
                conn, collection_id, loaders.source_of(Path(source))
            )

    def collections(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return store.list_collections(conn)

    def documents(self, *, collection: str | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return store.list_documents(conn, spaces.collection_id(conn, collection or self.settings.collection))

    # -- retrieve -----------------------------------------------------------------------------------------------
    def search_hits(
        self,
        query: str,
        *,
        collection: str | None = None,
        mode: SearchMode | None = None,
        k: int | None = None,
        filter: dict[str, Any] | None = None,
        feedback: bool = False,
        dense_text: str | None = None,
    ) -> list[Hit]:
        """Hybrid (or single-leg) search without reranking: the raw rows with per-leg ranks and scores.

        ``feedback`` adds pseudo-relevance feedback terms to the lexical leg; ``dense_text`` embeds another
        text than the query for the dense leg (HyDE)."""
        s = self.settings
        name = collection or s.collection
        params = SearchParams(
            mode=mode or s.mode, k=k or s.top_k, candidates=max(s.candidates, k or s.top_k), rrf_k=s.rrf_k,
            dense_weight=s.dense_weight, lexical_weight=s.lexical_weight, bm25_k1=s.bm25_k1, bm25_b=s.bm25_b,
            filter=filter, feedback_weight=s.prf_weight,
        )
        with self.engine.begin() as conn:
            space = spaces.active_space(conn, spaces.collection_id(conn, name))
            if space is None:
                return []
            vector = None
            if params.mode != "lexical":
                spaces.check_matches(space, self.embedding_spec, name)
                self.embeddings.expected_dimension = space.dimension
                vector = self.embeddings.embed_query(dense_text or query)
            if feedback and params.mode != "dense":
                first = search(conn, space, query, None, replace(params, mode="lexical", k=s.prf_docs))
                terms = feedback_terms(conn, space.collection_id, [hit.chunk_id for hit in first], s.prf_terms)
                params = replace(params, feedback_terms=tuple(terms))
            return search(conn, space, query, vector, params)

    def retriever(self, **options: Any) -> Any:
        """A LangChain BaseRetriever over this knowledge base (options: collection, mode, k, filter, rerank)."""
        from chains.retriever import PgRetriever

        return PgRetriever(kb=self, **options)

    def search(self, query: str, **options: Any) -> list[Document]:
        """Search and rerank; Documents carry source, chunk id and the score of every stage in metadata."""
        return self.retriever(**options).invoke(query)

    # -- generate -----------------------------------------------------------------------------------------------
    def answer_chain(self, **retriever_options: Any) -> Runnable:
        from chains.answer import build_answer_chain

        return build_answer_chain(self.retriever(**retriever_options), self.chat_model, self.settings.min_relevance)

    def ask(self, question: str, **retriever_options: Any) -> Answer:
        result = self.answer_chain(**retriever_options).invoke({"question": question})
        return Answer(question, result["answer"], result["citations"], result["sources"], result["retrieval"])


def _loaded_from_document(doc: Document) -> loaders.LoadedFile:
    source = doc.metadata.get("source")
    if not source:
        raise loaders.UnusableFile("document has no metadata['source'] to identify it")
    if not doc.page_content.strip():
        raise loaders.UnusableFile("document has no text")
    metadata = {key: value for key, value in doc.metadata.items() if key != "source"}
    return loaders.LoadedFile(
        source=str(source),
        kind="text",
        raw=doc.page_content.encode("utf-8"),
        sections=[loaders.Section(doc.page_content)],
        metadata=metadata,
    )
