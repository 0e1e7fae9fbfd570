"""The knowledge base: the Python entry point that the CLI, the server and scripts all go through.

    from pgrag import KnowledgeBase
    with KnowledgeBase.open() as kb:
        kb.ingest(["docs/"])
        print(kb.search("how are results fused?")[0].metadata["source"])
        print(kb.ask("How does pgrag fuse dense and lexical results?").answer)

Models load lazily and once per KnowledgeBase; the database engine is shared by every call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables import Runnable

from pgrag import validation
from pgrag.chains.answer import build_answer_chain
from pgrag.chains.retriever import PgRetriever
from pgrag.config import Settings
from pgrag.db import similarity, spaces, store
from pgrag.db.engine import create_engine, dispose, ensure_schema, in_transaction
from pgrag.db.search import Hit
from pgrag.db.sql import run_sql
from pgrag.errors import DatabaseUnavailable, DocumentNotFound, UnknownCollection, UnusableFile
from pgrag.ingest import loaders, pipeline
from pgrag.ingest.splitting import Splitter
from pgrag.providers import Models
from pgrag.reindex import ReindexReport, reindex
from pgrag.retrieval import Retrieval, SearchOptions
from pgrag.specs import EmbeddingSpec


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[dict[str, Any]]
    sources: list[Document]
    retrieval: dict[str, Any]  # best_similarity, threshold, unseen_words, weak: the retrieval health check
    grounded: bool  # every sentence cites a source (or the answer abstains)
    abstained: bool  # the answer says the knowledge base does not contain it
    timings: dict[str, Any]  # retrieval_s, first_token_s, total_s, tokens, tokens_per_s


# Near-duplicate pairs an ingest reports at most (`pgrag duplicates` lists them all).
DUPLICATES_REPORTED = 20
# Documents an ingest must bring, and at least as many as the collection holds, to build the vector index after
# the load (below that, inserting into the index costs less than building it).
BULK_LOAD_MIN_DOCUMENTS = 1000


class KnowledgeBase:
    def __init__(self, settings: Settings | None = None, *, connect: bool = True,
                 embeddings: Embeddings | None = None) -> None:
        """``connect=False`` defers starting the database to ``connect()`` (the server does it in its lifespan);
        ``embeddings`` replaces the configured embedding provider with any LangChain ``Embeddings``."""
        self.settings = settings or Settings()
        self.models = Models(self.settings, embeddings)
        self._engine: sa.Engine | None = None
        self._retrieval: Retrieval | None = None
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
            self._retrieval = Retrieval(engine, self.settings, self.models)

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            raise DatabaseUnavailable("The knowledge base is not connected: call connect() first.")
        return self._engine

    @property
    def retrieval(self) -> Retrieval:
        self.engine  # noqa: B018 - raises when not connected
        assert self._retrieval is not None
        return self._retrieval

    @classmethod
    def open(cls, settings: Settings | None = None, **overrides: Any) -> KnowledgeBase:
        """Open with ``settings`` (default: environment and pgrag.toml), overriding any field by keyword."""
        base = settings or Settings()
        return cls(Settings(**{**base.model_dump(), **overrides}) if overrides else base)

    def close(self) -> None:
        if self._engine is not None:
            dispose(self._engine, self.settings)
            self._engine = self._retrieval = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        max_bytes = int(self.settings.max_file_mb * 1e6)
        items = [(str(path), partial(loaders.load, path, max_bytes)) for path in files]
        return self._ingest(items, collection, on_progress)

    def ingest_documents(
        self,
        documents: Iterable[Document],
        *,
        collection: str | None = None,
        split: bool = True,
        on_progress: Callable[[pipeline.IngestReport], None] = lambda report: None,
    ) -> pipeline.IngestReport:
        """Ingest LangChain Documents; each needs a unique ``metadata["source"]``, which identifies it.
        ``split=False`` stores each document as one chunk (for texts that are already chunks)."""
        items = [(str(doc.metadata.get("source")), partial(_loaded_from_document, doc)) for doc in documents]
        return self._ingest(items, collection, on_progress, split)

    def _ingest(self, items: list[pipeline.LoadItem], collection: str | None,
                on_progress: Callable[[pipeline.IngestReport], None], split: bool = True) -> pipeline.IngestReport:
        name = collection or self.settings.collection
        configured = self.models.embedding_spec
        validation.text(name, "collection name")
        # The collection and its first embedding space are created by the first write, so a run that stores
        # nothing (every file rejected) leaves no empty collection behind.
        with self.engine.connect() as conn:
            collection_id = spaces.find_collection(conn, name)
            space = spaces.active_space(conn, collection_id) if collection_id is not None else None
            known = store.existing_hashes(conn, collection_id) if collection_id is not None else {}
        if space is not None:
            spaces.check_matches(space, configured, name)
        # A load that at least doubles the collection builds its vector index and its postings afterwards
        # instead of inserting into them (docs/scale.md); meanwhile its dense searches scan exactly and its
        # lexical searches see only the chunks stored before it.
        bulk = sum(source not in known for source, _ in items) >= max(BULK_LOAD_MIN_DOCUMENTS, len(known))
        if bulk and space is not None:
            spaces.drop_vector_index(self.engine, space)

        def stored(sources: list[str]) -> dict[str, str]:
            with self.engine.connect() as conn:
                found = spaces.find_collection(conn, name)
                return store.existing_hashes(conn, found, sources) if found is not None else {}

        def write(batch: list[tuple[pipeline.PreparedDocument, np.ndarray]]) -> list[str]:
            def work(conn: sa.Connection) -> list[str]:
                collection_id = spaces.collection_id(conn, name, create=True)
                store.lock_collection(conn, collection_id)
                space = spaces.active_space(conn, collection_id) or spaces.create_space(
                    conn, collection_id, configured, batch[0][1].shape[1], status="active",
                    storage=self.settings.embedding_storage, index=not bulk)
                spaces.check_matches(space, configured, name)
                if bulk:
                    store.defer_postings(conn, collection_id)
                current = store.existing_hashes(conn, collection_id, [doc.source for doc, _ in batch])
                # A document another writer stored meanwhile is left as it is.
                fresh = [(doc, vectors) for doc, vectors in batch if current.get(doc.source) != doc.content_hash]
                store.replace_documents(conn, collection_id, space, fresh)
                return [doc.source for doc, _ in fresh]

            return in_transaction(self.engine, work)

        try:
            report = pipeline.run(
                items,
                splitter=(Splitter(self.settings.chunk_size, self.settings.chunk_overlap,
                                   self.settings.contextual_chunks) if split else Splitter(None)),
                embeddings=self.models.embeddings.for_space(space.dimension) if space else self.models.embeddings,
                known=known,
                stored=stored,
                write=write,
                batch_chunks=self.settings.embed_flush_chunks,
                max_chunks=self.settings.max_document_chunks,
                on_progress=on_progress,
            )
        finally:
            with self.engine.connect() as conn:  # also repairs what a bulk load that was interrupted left out
                found = spaces.find_collection(conn, name)
                space = spaces.active_space(conn, found) if found is not None else None
            if found is not None:
                store.rebuild_deferred_postings(self.engine, found)
            if space is not None:
                spaces.ensure_vector_index(self.engine, space)
        if report.chunks >= store.ANALYZE_AFTER_CHUNKS:
            store.analyze(self.engine)
        if bulk:
            report.duplicates = None  # one nearest-neighbour search per written chunk: `pgrag duplicates` instead
        elif report.added or report.updated:
            with self.engine.connect() as conn:
                collection_id, space = self._space_of(conn, name)
                written = [store.document_id(conn, collection_id, source) for source in report.added + report.updated]
                report.duplicates = similarity.duplicate_pairs(conn, space, self.settings.duplicate_threshold,
                                                               DUPLICATES_REPORTED, written)
        return report

    def delete(self, source: str, *, collection: str | None = None, missing_ok: bool = True) -> bool:
        """Delete a document by its source (a path is resolved the way ingest names files). Returns whether
        there was one; with ``missing_ok=False`` a missing document is a ``DocumentNotFound`` error."""
        name = collection or self.settings.collection
        validation.text(source, "source")

        def work(conn: sa.Connection) -> bool:
            collection_id = spaces.collection_id(conn, name)
            store.lock_collection(conn, collection_id)
            return bool(store.delete_documents(conn, collection_id, [source]) or store.delete_documents(
                conn, collection_id, [loaders.source_of(Path(source))]))

        if in_transaction(self.engine, work):
            return True
        if missing_ok:
            return False
        raise DocumentNotFound(f"No document {source!r} in collection {name!r}: there is no document by that "
                               f"source; `pgrag documents -c {name}` lists them.")

    def get_documents(self, sources: list[str], *, collection: str | None = None) -> list[Document]:
        """The stored documents with these sources (in that order, missing ones left out), their chunks joined;
        ``Document.id`` is the source."""
        with self.engine.connect() as conn:
            rows = store.documents_by_source(conn, spaces.collection_id(conn, collection or self.settings.collection),
                                             sources)
        found = {row["source"]: row for row in rows}
        return [Document(found[s]["content"], metadata=found[s]["metadata"], id=s) for s in sources if s in found]

    def vectors(self, chunk_ids: list[int], *, collection: str | None = None) -> dict[int, list[float]]:
        """The stored vectors of these chunks in the collection's active embedding space."""
        with self.engine.connect() as conn:
            space = spaces.active_space_of(conn, collection or self.settings.collection)
            return store.vectors(conn, space, chunk_ids) if space else {}

    # -- beyond search -----------------------------------------------------------------------------------------
    def similar(self, target: str | int, *, collection: str | None = None, k: int = 5) -> list[dict[str, Any]]:
        """Chunks like one chunk (``target`` an int chunk id), or documents like one document (``target`` its
        source), from other documents, most similar first."""
        name = collection or self.settings.collection
        with self.engine.connect() as conn:
            collection_id, space = self._space_of(conn, name)
            if isinstance(target, int):
                return similarity.similar_to_chunk(conn, space, target, k)
            validation.text(target, "source")
            document_id = store.document_id(conn, collection_id, target) or store.document_id(
                conn, collection_id, loaders.source_of(Path(target)))
            if document_id is None:
                raise DocumentNotFound(f"No document {target!r} in collection {name!r}; `pgrag documents -c {name}` "
                                       "lists them.")
            return similarity.similar_to_document(conn, space, document_id, k)

    def duplicates(self, *, collection: str | None = None, threshold: float | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
        """Pairs of chunks in different documents at least ``threshold`` similar (cosine; default
        ``settings.duplicate_threshold``), closest first."""
        with self.engine.connect() as conn:
            _, space = self._space_of(conn, collection or self.settings.collection)
            return similarity.duplicate_pairs(conn, space, threshold if threshold is not None else self.settings.duplicate_threshold, limit)

    def outliers(self, *, collection: str | None = None, k: int = 10) -> list[dict[str, Any]]:
        """The chunks farthest from their nearest neighbours (junk, boilerplate, mis-parsed pages) first."""
        with self.engine.connect() as conn:
            _, space = self._space_of(conn, collection or self.settings.collection)
            return similarity.outliers(conn, space, k)

    def _space_of(self, conn: sa.Connection, name: str) -> tuple[int, spaces.Space]:
        collection_id = spaces.collection_id(conn, name)
        space = spaces.active_space(conn, collection_id)
        if space is None:
            raise UnknownCollection(f"Collection {name!r} has no vectors yet; ingest into it first.")
        return collection_id, space

    def require_collection(self, name: str) -> None:
        """Raise ``UnknownCollection``, saying how to create it, unless the collection exists."""
        with self.engine.connect() as conn:
            spaces.collection_id(conn, name)

    def collections(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return store.list_collections(conn)

    def documents(self, *, collection: str | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return store.list_documents(conn, spaces.collection_id(conn, collection or self.settings.collection))

    # -- administration -----------------------------------------------------------------------------------------
    def reindex(self, spec: EmbeddingSpec, *, collection: str | None = None, storage: str = "vector",
                on_progress: Callable[[int, int], None] = lambda done, total: None) -> ReindexReport:
        """Re-embed a collection under ``spec`` with no downtime (see ``pgrag.reindex``); resumable."""
        return reindex(self.engine, self.settings, collection or self.settings.collection, spec, storage=storage,
                       on_progress=on_progress)

    def drop_retired(self, *, collection: str | None = None) -> int:
        """Delete the vectors of the collection's retired embedding spaces; returns how many."""
        with self.engine.begin() as conn:
            return spaces.drop_retired(conn, spaces.collection_id(conn, collection or self.settings.collection))

    def spaces(self, *, collection: str | None = None) -> list[dict[str, Any]]:
        """Embedding spaces (of one collection, or all) with model, status and vector counts."""
        with self.engine.connect() as conn:
            return spaces.space_rows(conn, collection)

    def sql(self, statement: str, *, limit: int = 100) -> tuple[list[str], list[tuple]]:
        """Run one SQL statement as it is: (column names, up to ``limit`` rows)."""
        return run_sql(self.engine, statement, limit)

    # -- retrieve -----------------------------------------------------------------------------------------------
    def search_hits(self, query: str, **options: Any) -> list[Hit]:
        """Search without reranking: the raw rows with per-leg ranks and scores (options: collection, mode, k,
        filter, feedback, dense_text; see ``Retrieval.hits``)."""
        return self.retrieval.hits(query, **options)

    def retriever(self, **options: Any) -> PgRetriever:
        """A LangChain BaseRetriever over this knowledge base (options: collection, mode, k, filter, rerank,
        expansion)."""
        return PgRetriever(retrieval=self.retrieval, options=SearchOptions(**options))

    def search(self, query: str, **options: Any) -> list[Document]:
        """Search and rerank; Documents carry source, chunk id and the score of every stage in metadata."""
        return self.retrieval.documents(query, SearchOptions(**options))

    # -- generate -----------------------------------------------------------------------------------------------
    def answer_chain(self, **retriever_options: Any) -> Runnable:
        """The LCEL answer chain: ``{"question"}`` → the fields of ``Answer``; of ``k`` sources (default
        ``answer_sources``), the first three and those scored close to the best go into the prompt."""
        retriever_options["k"] = retriever_options.get("k") or self.settings.answer_sources
        collection = retriever_options.get("collection")
        return build_answer_chain(self.retriever(**retriever_options), self.models.chat_model, self.settings,
                                  unseen_words=lambda question: self.retrieval.unseen_words(question, collection))

    def ask(self, question: str, **retriever_options: Any) -> Answer:
        return Answer(**self.answer_chain(**retriever_options).invoke({"question": question}))


def _loaded_from_document(doc: Document) -> loaders.LoadedFile:
    source = doc.metadata.get("source")
    if not source:
        raise UnusableFile("document has no metadata['source'] to identify it")
    if not doc.page_content.strip():
        raise UnusableFile("document has no text")
    metadata = {key: value for key, value in doc.metadata.items() if key != "source"}
    return loaders.LoadedFile(
        source=str(source),
        kind="text",
        raw=doc.page_content.encode("utf-8"),
        sections=[loaders.Section(doc.page_content)],
        metadata=metadata,
    )
