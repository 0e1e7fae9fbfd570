"""The retrieval service: search parameters built from settings in one place, hybrid search in the database,
query expansion, cross-encoder reranking, and the retrieval health check. The knowledge base owns one;
``PgRetriever`` adapts it to LangChain."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from langchain_core.documents import Document

from pgrag.chains.citations import code_names, numbered_names
from pgrag.chains.expansion import fuse_rankings, hypothetical_document, rewrite_queries
from pgrag.chains.rerank import CrossEncoderReranker
from pgrag.config import Expansion, SearchMode, Settings
from pgrag import validation
from pgrag.db import spaces
from pgrag.db.search import Hit, SearchParams, feedback_terms, search, unseen_names, unseen_words
from pgrag.providers import Models


# An unseen English word counts against a question when the collection is big enough to be expected to hold it
# this many times (its tokens × the word's frequency in English). 10, not 1: a word expected once is missing by
# chance a third of the time, and a manual's or a paper's vocabulary is not general English. At 1, "quickly" stopped
# an answerable question in 30 pages of the PostgreSQL manual, and English words stopped 12 answerable SciFact claims
# and 13 NFCorpus queries that 10 lets through; the Python manual's catches are the same (docs/eval/answers.md).
EXPECTED_OCCURRENCES = 10.0


def absence_is_telling(word: str, collection_tokens: int) -> bool:
    """Whether a word that no chunk contains says the collection does not cover the question: a word no English
    word list knows (a name, an identifier) always does; an English word once the collection would be expected to
    hold it ``EXPECTED_OCCURRENCES`` times."""
    from wordfreq import word_frequency

    frequency = word_frequency(word, "en")
    return frequency == 0 or collection_tokens * frequency >= EXPECTED_OCCURRENCES


@dataclass(frozen=True)
class SearchOptions:
    """What one search asks for; ``None`` takes the setting."""

    collection: str | None = None
    mode: SearchMode | None = None
    k: int | None = None
    filter: dict[str, Any] | None = None
    rerank: bool = True
    expansion: Expansion | None = None


class Retrieval:
    def __init__(self, engine: sa.Engine, settings: Settings, models: Models) -> None:
        self.engine, self.settings, self.models = engine, settings, models

    def params(self, mode: SearchMode | None = None, k: int | None = None,
               filter: dict[str, Any] | None = None) -> SearchParams:
        """The one place where settings become search parameters."""
        s = self.settings
        k = k or s.top_k
        dense_weight, lexical_weight = s.fusion_weights
        return SearchParams(
            mode=mode or s.mode, k=k, candidates=max(s.candidates, k), fusion=s.fusion, rrf_k=s.rrf_k,
            dense_weight=dense_weight, lexical_weight=lexical_weight, bm25_k1=s.bm25_k1, bm25_b=s.bm25_b,
            lexical_depth=s.lexical_depth,
            filter=validation.metadata_filter(filter) or None,
            feedback_weight=s.prf_weight,
        )

    def hits(self, query: str, *, collection: str | None = None, mode: SearchMode | None = None,
             k: int | None = None, filter: dict[str, Any] | None = None, feedback: bool = False,
             dense_text: str | None = None) -> list[Hit]:
        """Hybrid (or single-leg) search without reranking: rows with per-leg ranks and scores.

        ``feedback`` adds pseudo-relevance feedback terms to the lexical leg; ``dense_text`` embeds another
        text than the query for the dense leg (HyDE)."""
        name = collection or self.settings.collection
        validation.text(query, "query")
        params = self.params(mode, k, filter)
        with self.engine.connect() as conn:
            space = spaces.active_space_of(conn, name)
        if space is None:
            return []
        vector = None
        if params.mode != "lexical":
            spaces.check_matches(space, self.models.embedding_spec, name)
            # Encoded with no connection held: under load, encoding is the slow part, and a connection held
            # through it starved 50 concurrent searches of the pool (scripts/bench_server.py).
            vector = self.models.embeddings.for_space(space.dimension).embed_query(dense_text or query)
        with self.engine.begin() as conn:
            if feedback and params.mode != "dense":
                first = search(conn, space, query, None, replace(params, mode="lexical", k=self.settings.prf_docs))
                terms = feedback_terms(conn, space.collection_id, [hit.chunk_id for hit in first],
                                       self.settings.prf_terms)
                params = replace(params, feedback_terms=tuple(terms))
            return search(conn, space, query, vector, params)

    def expanded_hits(self, query: str, options: SearchOptions, k: int) -> list[Hit]:
        """``hits``, with the query expanded first as the options (or settings) say."""
        expansion = options.expansion or self.settings.expansion
        common = {"collection": options.collection, "mode": options.mode, "k": k, "filter": options.filter}
        if expansion == "prf":
            return self.hits(query, feedback=True, **common)
        if expansion == "hyde":
            return self.hits(query, dense_text=hypothetical_document(self.models.chat_model, query), **common)
        if expansion == "multi-query":
            rewrites = rewrite_queries(self.models.chat_model, query, self.settings.multi_queries)
            return fuse_rankings([self.hits(q, **common) for q in [query, *rewrites]], self.settings.rrf_k, k)
        return self.hits(query, **common)

    def unseen_words(self, query: str, collection: str | None = None) -> list[str]:
        """The query's words that the collection never contains although, for its size, it would be expected
        to: names and terms no English word list knows ("maxfail", "urllib3") in any collection, English
        words (by their frequency in English, from wordfreq) once the collection is large enough to hold them
        many times ("pin" in a 1M-token manual, not "often" in three sentences), and code-shaped or
        numbered names that no chunk contains whole (CSRF_TRUSTED_ORIGINS, whose words apart are common; "PEP
        695" in the Python 3.11 manual, which has both words but never together). A question naming
        such a word asks about something the knowledge base does not cover; a small chat model answers it
        anyway, from memory (docs/eval/answers.md)."""
        with self.engine.begin() as conn:
            collection_id = spaces.collection_id(conn, collection or self.settings.collection)
            words, tokens = unseen_words(conn, collection_id, query)
            names = unseen_names(conn, collection_id, [*code_names(query), *numbered_names(query)])
        return list(dict.fromkeys([*names, *(word for word in words if absence_is_telling(word, tokens))]))

    def reranker(self, top_n: int) -> CrossEncoderReranker | None:
        """The configured cross-encoder as a document compressor keeping ``top_n``, or None when it is off."""
        model = self.models.cross_encoder
        if model is None:
            return None
        return CrossEncoderReranker(model=model, top_n=top_n, weight=self.models.blend_weight,
                                    rrf_k=self.settings.rrf_k)

    def documents(self, query: str, options: SearchOptions = SearchOptions()) -> list[Document]:
        """The top ``k`` fused results, of which the first ``rerank_candidates`` are reordered by the
        cross-encoder (so a deep ``k``, as evaluation uses, costs no more cross-encoder calls)."""
        k = options.k or self.settings.top_k
        depth = self.settings.rerank_candidates
        reranker = self.reranker(top_n=depth) if options.rerank else None
        documents = [hit_to_document(hit) for hit in self.expanded_hits(query, options, max(k, depth) if reranker
                                                                        else k)]
        if reranker is not None:
            documents = list(reranker.compress_documents(documents[:depth], query)) + documents[depth:]
        return documents[:k]


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


def source_fields(doc: Document) -> dict[str, Any]:
    """A result as plain data, as the CLI's --json and the HTTP API give it."""
    metadata = dict(doc.metadata)
    return {"source": metadata.pop("source"), "chunk_id": metadata.pop("chunk_id"), "content": doc.page_content,
            "scores": metadata.pop("scores", {}), "metadata": metadata}


def best_similarity(documents: list[Document]) -> float | None:
    """The highest dense (cosine) similarity among retrieved passages: the retrieval health signal. None when
    no passage has one (lexical-only search), which the health check treats as unknown rather than weak."""
    scores = [doc.metadata.get("scores", {}).get("dense_score") for doc in documents]
    return max((s for s in scores if s is not None), default=None)


def is_weak(documents: list[Document], threshold: float) -> bool:
    best = best_similarity(documents)
    return not documents or (best is not None and best < threshold)
