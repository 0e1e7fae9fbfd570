"""The SQL of search: one statement that runs the dense leg (HNSW), the lexical leg (BM25 over postings),
scores every candidate of either leg on both, and fuses them (min-max scaled scores or reciprocal ranks).

Postgres has no BM25 and ``ts_rank`` has no IDF, so BM25 is computed here from the postings, document
frequencies and lengths that the chunks triggers keep current (migrations 0001 and 0009). The lexical leg reads
each query term's ``lexical_depth`` postings of highest BM25 impact (a range scan of its posting blocks, best
impact bucket first, whatever the length of the list), pools the chunks with the best sum of impacts, and scores
the pool exactly: a champion-list scheme, because an exact top-k over whole posting lists grows with the corpus
(ms per 10k chunks). With a metadata filter the best postings may all be filtered out, so filtered searches read whole
lists. A mode that leaves a leg out swaps it for an empty relation, so every mode runs through the same
statement shape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pgvector import Vector

from pgrag.config import Fusion, SearchMode
from pgrag.db.models import TEXT_SEARCH_CONFIG
from pgrag.db.spaces import Space


@dataclass(frozen=True)
class SearchParams:
    """One search's parameters; ``Retrieval.params`` makes them from the settings, which hold the defaults."""

    mode: SearchMode
    k: int
    candidates: int
    fusion: Fusion
    rrf_k: float
    dense_weight: float
    lexical_weight: float
    bm25_k1: float
    bm25_b: float
    lexical_depth: int  # postings read per query term, best impact first; 0 reads whole lists (exact)
    filter: dict[str, Any] | None
    feedback_weight: float
    feedback_terms: tuple[str, ...] = ()  # pseudo-relevance feedback lexemes added to the lexical query


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: int
    source: str
    ordinal: int
    content: str
    metadata: dict[str, Any]
    score: float
    scores: dict[str, float | int | None] = field(default_factory=dict)


_DENSE = """
dense AS (
  SELECT chunk_id, 1 - distance AS score, row_number() OVER (ORDER BY distance) AS rank
  FROM (
    SELECT e.chunk_id, e.{column}::{cast} <=> CAST(:query_vector AS {cast}) AS distance
    FROM chunk_embeddings e {filter_join}
    WHERE e.space_id = :space_id {filter}
    ORDER BY distance
    LIMIT :candidates
  ) nearest
)"""

_LEXICAL = """
stats AS (
  SELECT chunk_count::float8 AS n, token_count::float8 / greatest(chunk_count, 1) AS avgdl
  FROM collections WHERE id = :collection_id
),
query_terms AS (
  SELECT lexeme, coalesce(array_length(positions, 1), 1)::float8 AS weight  -- a term said twice counts twice
  FROM unnest(to_tsvector('{config}'::regconfig, :query_text))
  UNION ALL
  SELECT lexeme, CAST(:feedback_weight AS float8) FROM unnest(CAST(:feedback_terms AS text[])) AS lexeme
),
terms AS (
  SELECT s.id, s.lexeme, max(q.weight) * ln(1 + (stats.n - s.doc_freq + 0.5) / (s.doc_freq + 0.5)) AS idf
  FROM lexeme_stats s JOIN query_terms q ON q.lexeme = s.lexeme, stats
  WHERE s.collection_id = :collection_id
  GROUP BY s.id, s.lexeme, s.doc_freq, stats.n
),
pool AS MATERIALIZED (
  SELECT p.chunk_id
  FROM terms t CROSS JOIN LATERAL (
    -- The term's blocks in index order, best impact bucket first; LIMIT stops the scan after :depth postings.
    SELECT x.chunk_id, b.bucket FROM posting_blocks b CROSS JOIN LATERAL unnest(b.chunk_ids) AS x(chunk_id)
    WHERE b.term_id = t.id ORDER BY b.bucket DESC LIMIT :depth
  ) p {filter_join}
  GROUP BY p.chunk_id
  ORDER BY sum(t.idf * (p.bucket + 0.5::float8)) DESC, p.chunk_id
  LIMIT :pool
),
scored AS (
  -- Exact BM25 of the pool, and of the dense leg's candidates, so that fusion knows both scores of each chunk:
  -- term frequencies from the chunk's own tsvector, cut down to the query's terms (marked with weight A, then
  -- filtered: C functions, rather than unnesting every term of every chunk).
  SELECT s.chunk_id,
         sum(t.idf * u.tf * (:k1 + 1) / (u.tf + :k1 * (1 - :b + :b * c.token_count / stats.avgdl))) AS score
  FROM (SELECT chunk_id FROM pool UNION SELECT chunk_id FROM dense) s
  JOIN chunks c ON c.id = s.chunk_id
  CROSS JOIN LATERAL (
    SELECT lexeme, coalesce(array_length(positions, 1), 1)::float8 AS tf
    FROM unnest(ts_filter(setweight(c.tsv, 'A', (SELECT array_agg(lexeme) FROM terms)), '{{a}}'))
  ) u
  JOIN terms t ON t.lexeme = u.lexeme
  CROSS JOIN stats
  GROUP BY s.chunk_id
),
lexical AS (
  SELECT chunk_id, score, row_number() OVER (ORDER BY score DESC, chunk_id) AS rank
  FROM (SELECT chunk_id, score FROM scored ORDER BY score DESC, chunk_id LIMIT :candidates) best
)"""

# Chunks scored exactly per candidate the lexical leg returns; measured in docs/scale.md.
POOL_PER_CANDIDATE = 4

_EMPTY_LEG = "{name} AS (SELECT NULL::bigint AS chunk_id, NULL::float8 AS score, NULL::bigint AS rank WHERE false)"

_COSINE_OF_LEXICAL = """
dense_scores AS (
  -- The dense leg's scores and the exact cosine of the chunks that only the lexical leg found.
  SELECT chunk_id, score FROM dense
  UNION ALL
  SELECT e.chunk_id, 1 - (e.{column}::{cast} <=> CAST(:query_vector AS {cast}))
  FROM lexical l JOIN chunk_embeddings e ON e.space_id = :space_id AND e.chunk_id = l.chunk_id
  WHERE NOT EXISTS (SELECT 1 FROM dense d WHERE d.chunk_id = l.chunk_id)
)"""


def _minmax(leg: str) -> str:
    """A chunk's score on ``leg`` scaled so that all candidates being fused span [0, 1] on it (a missing BM25
    score is 0: no query term). A leg that returned nothing adds 0."""
    score, low, high = f"coalesce(c.{leg}_score, 0)", f"spans.{leg}_low", f"spans.{leg}_high"
    return (f"CASE WHEN NOT spans.{leg}_returned THEN 0"
            f" WHEN {high} > {low} THEN ({score} - {low}) / ({high} - {low}) ELSE 1 END")


# How the two legs' candidates are fused into one ranking (settings.fusion). Min-max fusion is Weaviate's
# relativeScoreFusion, scaled here over every candidate of both legs; RRF uses the ranks alone. Measured in
# docs/eval/fusion.md.
FUSION_SCORES = {
    "minmax": f"CAST(:dense_weight AS float8) * ({_minmax('dense')})"
              f" + CAST(:lexical_weight AS float8) * ({_minmax('lexical')})",
    "rrf": "coalesce(CAST(:dense_weight AS float8) / (:rrf_k + c.dense_rank), 0)"
           " + coalesce(CAST(:lexical_weight AS float8) / (:rrf_k + c.lexical_rank), 0)",
}

_FUSE = """
candidates AS (
  SELECT f.chunk_id, d.rank AS dense_rank, dense_scores.score AS dense_score,
         l.rank AS lexical_rank, lexical_scores.score AS lexical_score
  FROM (SELECT chunk_id FROM dense UNION SELECT chunk_id FROM lexical) f
  LEFT JOIN dense d USING (chunk_id)
  LEFT JOIN lexical l USING (chunk_id)
  LEFT JOIN dense_scores USING (chunk_id)
  LEFT JOIN scored lexical_scores USING (chunk_id)
),
spans AS (
  -- Each leg's scale comes from every candidate's score on it, so both legs span the same chunks.
  SELECT bool_or(dense_rank IS NOT NULL) AS dense_returned,
         min(coalesce(dense_score, 0)) AS dense_low, max(coalesce(dense_score, 0)) AS dense_high,
         bool_or(lexical_rank IS NOT NULL) AS lexical_returned,
         min(coalesce(lexical_score, 0)) AS lexical_low, max(coalesce(lexical_score, 0)) AS lexical_high
  FROM candidates
),
fused AS (
  SELECT c.*, {score} AS score
  FROM candidates c
  CROSS JOIN spans
)
SELECT f.*, c.document_id, c.ordinal, c.content, c.metadata, doc.source
FROM fused f
JOIN chunks c ON c.id = f.chunk_id
JOIN documents doc ON doc.id = c.document_id
ORDER BY f.score DESC, f.chunk_id
LIMIT :k"""


def search_sql(mode: SearchMode, space: Space, filtered: bool, fusion: Fusion) -> str:
    """The statement for a mode; distinct modes get distinct SQL text, so prepared plans never mix."""
    chunk_filter = "AND c.metadata @> CAST(:filter AS jsonb)" if filtered else ""
    dense = (
        _DENSE.format(
            column=space.column,
            cast=space.vector_cast,
            filter_join="JOIN chunks c ON c.id = e.chunk_id" if filtered else "",
            filter=chunk_filter,
        )
        if mode in ("dense", "hybrid")
        else _EMPTY_LEG.format(name="dense")
    )
    lexical = (
        _LEXICAL.format(
            config=TEXT_SEARCH_CONFIG,
            filter_join=f"JOIN chunks c ON c.id = p.chunk_id {chunk_filter}" if filtered else "",
        )
        if mode in ("lexical", "hybrid")
        else _EMPTY_LEG.format(name="scored") + ",\n" + _EMPTY_LEG.format(name="lexical")
    )
    dense_scores = (_COSINE_OF_LEXICAL.format(column=space.column, cast=space.vector_cast) if mode == "hybrid"
                    else "dense_scores AS (SELECT chunk_id, score FROM dense)")
    return ("WITH " + ",\n".join([dense, lexical, dense_scores])
            + ",\n" + _FUSE.format(score=FUSION_SCORES[fusion]))


def feedback_terms(conn: sa.Connection, collection_id: int, chunk_ids: Sequence[int], n_terms: int) -> list[str]:
    """The most distinctive terms (tf × idf) of the given chunks: the expansion of pseudo-relevance feedback."""
    if not chunk_ids:
        return []
    return list(conn.execute(sa.text("""
        SELECT u.lexeme
        FROM chunks c
        CROSS JOIN LATERAL unnest(c.tsv) u
        JOIN lexeme_stats s ON s.collection_id = c.collection_id AND s.lexeme = u.lexeme
        JOIN collections col ON col.id = c.collection_id
        WHERE c.id = ANY(:chunk_ids) AND c.collection_id = :collection_id
        GROUP BY u.lexeme, s.doc_freq, col.chunk_count
        ORDER BY sum(coalesce(array_length(u.positions, 1), 1)) * ln(col.chunk_count::float8 / s.doc_freq) DESC,
                 u.lexeme
        LIMIT :n_terms"""), {"chunk_ids": list(chunk_ids), "collection_id": collection_id, "n_terms": n_terms}
    ).scalars())


def search(
    conn: sa.Connection,
    space: Space,
    query_text: str,
    query_vector: Sequence[float] | None,
    params: SearchParams,
) -> list[Hit]:
    if params.mode != "lexical" and query_vector is None:
        raise ValueError(f"{params.mode} search needs a query vector")
    filtered = bool(params.filter)
    bounded = params.lexical_depth > 0 and not filtered
    # ef_search must cover the leg's LIMIT; with a filter, keep scanning until enough rows pass it.
    conn.execute(sa.text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(max(40, params.candidates))})
    if filtered:
        conn.execute(sa.text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"))
    rows = conn.execute(
        sa.text(search_sql(params.mode, space, filtered, params.fusion)),
        {
            "collection_id": space.collection_id,
            "space_id": space.id,
            "query_text": query_text,
            "query_vector": Vector(query_vector).to_text() if query_vector is not None else None,
            "candidates": params.candidates,
            # LIMIT NULL reads everything: whole posting lists (filtered or exact), every chunk scored (exact).
            "depth": params.lexical_depth if bounded else None,
            "pool": POOL_PER_CANDIDATE * params.candidates if params.lexical_depth > 0 else None,
            "k": params.k,
            "rrf_k": params.rrf_k,
            "dense_weight": params.dense_weight,
            "lexical_weight": params.lexical_weight,
            "k1": params.bm25_k1,
            "b": params.bm25_b,
            "filter": json.dumps(params.filter) if filtered else None,
            "feedback_terms": list(params.feedback_terms),
            "feedback_weight": params.feedback_weight,
        },
    ).mappings()
    return [
        Hit(
            chunk_id=row["chunk_id"],
            document_id=row["document_id"],
            source=row["source"],
            ordinal=row["ordinal"],
            content=row["content"],
            metadata=row["metadata"],
            score=row["score"],
            scores={key: row[key] for key in ("dense_rank", "dense_score", "lexical_rank", "lexical_score")},
        )
        for row in rows
    ]


def unseen_words(conn: sa.Connection, collection_id: int, text: str) -> tuple[list[str], int]:
    """The words of ``text`` (as the lexical leg parses them) that no chunk of the collection contains, in the
    order they come, and the collection's size in (non-stop-word) tokens, which says how telling their absence
    is. Parts of a hyphenated word count, the whole does not: "free-threaded" is unseen only if "free" or
    "threaded" is."""
    words = list(conn.execute(sa.text(f"""
        SELECT d.token
        FROM ts_debug('{TEXT_SEARCH_CONFIG}'::regconfig, :text) WITH ORDINALITY AS d
        WHERE cardinality(d.lexemes) > 0 AND d.alias NOT IN ('asciihword', 'hword', 'numhword')
          AND NOT EXISTS (SELECT 1 FROM lexeme_stats s
                          WHERE s.collection_id = :collection_id AND s.lexeme = ANY(d.lexemes))
        GROUP BY d.token
        ORDER BY min(d.ordinality)"""), {"collection_id": collection_id, "text": text}).scalars())
    tokens = conn.execute(sa.text("SELECT token_count FROM collections WHERE id = :id"), {"id": collection_id})
    return words, int(tokens.scalar_one())


def unseen_names(conn: sa.Connection, collection_id: int, names: Sequence[str]) -> list[str]:
    """The names that the text parser splits into several words (CSRF_TRUSTED_ORIGINS: "csrf", "trusted",
    "origins"; "PEP 695": "pep", "695") and that no chunk of the collection contains as that phrase, in the order
    given. The words apart may all be common; the name is what the question is about."""
    if not names:
        return []
    return list(conn.execute(sa.text(f"""
        SELECT n.name
        FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS n(name, i),
             phraseto_tsquery('{TEXT_SEARCH_CONFIG}'::regconfig, n.name) AS q
        WHERE numnode(q) > 1
          AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.collection_id = :collection_id AND c.tsv @@ q)
        ORDER BY n.i"""), {"collection_id": collection_id, "names": list(names)}).scalars())
