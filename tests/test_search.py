"""Retrieval on the real database and the packaged embedding model: each leg, fusion, filters, BM25 statistics."""

import math

import pytest
import sqlalchemy as sa
from langchain_core.documents import Document

from conftest import assert_statistics_exact
from typer.testing import CliRunner

from pgrag.cli import app
from pgrag.errors import DocumentNotFound
from corpus import DISTRACTORS, PARAPHRASE_PASSAGE, PARAPHRASE_QUERY

CONTRACTORS = [
    "The building contractor repaired the leaking roof and replaced the broken gutters before winter.",
    "Our contractor quoted a fixed price for the kitchen renovation, including plumbing and tiling.",
    "The city hired a contractor to resurface the main road, working at night to limit traffic delays.",
    "A reliable contractor provides written estimates, insurance certificates and references from past clients.",
    "The contractor's crew poured the concrete foundation and framed the walls of the new house.",
]
# A rare name in a passage about something else: dense search ranks the generic contractor passages first.
RARE_PASSAGE = ("Meeting notes: the tomatoes were staked early this year and the greenhouse vents were fixed by "
                "Vendrilux on Tuesday.")
RARE_QUERY = "which contractor is Vendrilux"


@pytest.fixture(scope="module")
def planted(kb):
    name = "planted_search"
    texts = DISTRACTORS + CONTRACTORS + [PARAPHRASE_PASSAGE, RARE_PASSAGE]
    kb.ingest_documents(
        [Document(t, metadata={"source": f"doc{i}", "group": "contractors" if t in CONTRACTORS else "other"})
         for i, t in enumerate(texts)],
        collection=name,
    )
    return name


def contents(kb, query, collection, mode, **options):
    return [h.content for h in kb.search_hits(query, collection=collection, mode=mode, k=3, **options)]


def test_hybrid_finds_paraphrase_that_lexical_misses(kb, planted):
    assert PARAPHRASE_PASSAGE not in contents(kb, PARAPHRASE_QUERY, planted, "lexical")
    assert PARAPHRASE_PASSAGE in contents(kb, PARAPHRASE_QUERY, planted, "dense")
    assert PARAPHRASE_PASSAGE in contents(kb, PARAPHRASE_QUERY, planted, "hybrid")


def test_hybrid_finds_rare_term_that_dense_misses(kb, planted):
    assert RARE_PASSAGE not in contents(kb, RARE_QUERY, planted, "dense")
    assert contents(kb, RARE_QUERY, planted, "lexical")[0] == RARE_PASSAGE
    assert RARE_PASSAGE in contents(kb, RARE_QUERY, planted, "hybrid")


def test_hybrid_scores_every_candidate_on_both_legs_and_fuses_them(kb, planted):
    """A chunk only one leg returned gets its exact score on the other leg too (cosine; BM25, none when no query term
    is in it). Min-max fusion adds both scores, each scaled over all candidates and weighted; RRF adds reciprocal
    ranks."""
    def leg(mode: str) -> dict[int, float]:
        hits = kb.search_hits(RARE_QUERY, collection=planted, mode=mode, k=50)
        return {h.chunk_id: h.scores[f"{mode}_score"] for h in hits}

    cosine, bm25 = leg("dense"), leg("lexical")
    candidates = {*list(cosine)[:3], *list(bm25)[:3]}  # each leg's best 3

    def hybrid(fusion: str):
        kb.retrieval.settings = kb.settings.model_copy(update={"candidates": 3, "fusion": fusion})
        try:
            return kb.search_hits(RARE_QUERY, collection=planted, mode="hybrid", k=3)
        finally:
            kb.retrieval.settings = kb.settings

    def scaled(scores: dict[int, float], chunk_id: int) -> float:
        over = [scores.get(c, 0.0) for c in candidates]
        return (scores.get(chunk_id, 0.0) - min(over)) / (max(over) - min(over))

    dense_weight, lexical_weight = kb.settings.fusion_weights
    hits = hybrid("minmax")
    rare = next(h for h in hits if h.content == RARE_PASSAGE)
    assert rare.scores["dense_rank"] is None and rare.scores["dense_score"] == pytest.approx(cosine[rare.chunk_id])
    for hit in hits:
        assert hit.scores["dense_score"] == pytest.approx(cosine[hit.chunk_id])
        assert hit.scores["lexical_score"] == (pytest.approx(bm25[hit.chunk_id]) if hit.chunk_id in bm25 else None)
        assert hit.score == pytest.approx(dense_weight * scaled(cosine, hit.chunk_id)
                                          + lexical_weight * scaled(bm25, hit.chunk_id))
    for hit in hybrid("rrf"):
        ranks = [hit.scores["dense_rank"], hit.scores["lexical_rank"]]
        assert hit.score == pytest.approx(sum(1 / (kb.settings.rrf_k + r) for r in ranks if r is not None))


def test_results_carry_source_chunk_and_leg_scores(kb, planted):
    doc = kb.search(RARE_QUERY, collection=planted, k=3)[-1]
    assert doc.metadata["source"].startswith("doc") and isinstance(doc.metadata["chunk_id"], int)
    assert set(doc.metadata["scores"]) >= {"fused", "dense_rank", "dense_score", "lexical_rank", "lexical_score"}


def test_metadata_filter_is_applied_in_both_legs(kb, planted):
    for mode in ("dense", "lexical", "hybrid"):
        hits = kb.search_hits("contractor bridge inspection", collection=planted, mode=mode, k=10, filter={"group": "other"})
        assert hits and all(h.metadata["group"] == "other" for h in hits)


def test_hostile_query_text_is_just_text(kb, planted):
    for query in ["'; DROP TABLE chunks; --", "a & b | !c :* \\", "", "   "]:
        kb.search_hits(query, collection=planted, mode="hybrid")
    assert kb.search_hits("contractor", collection=planted, mode="lexical")


def test_bm25_statistics_match_recomputation_after_insert_update_delete(kb, collection):
    docs = [Document(t, metadata={"source": f"s{i}"}) for i, t in enumerate(DISTRACTORS[:10])]
    kb.ingest_documents(docs, collection=collection)
    kb.ingest_documents([Document("The bridge and the bridge again.", metadata={"source": "s3"})],
                        collection=collection)
    kb.delete("s5", collection=collection)
    with kb.engine.begin() as conn:
        conn.execute(sa.text("UPDATE chunks SET content = content || ' honeybees' WHERE ordinal = 0 AND document_id ="
                             " (SELECT d.id FROM documents d JOIN collections c ON c.id = d.collection_id "
                             "WHERE c.name = :c AND d.source = 's7')"), {"c": collection})
    assert_statistics_exact(kb, collection)
    assert [c["chunk_count"] for c in kb.collections() if c["name"] == collection] == [9]
    assert kb.search_hits("honeybees", collection=collection, mode="lexical", k=10)


def test_lexical_score_is_bm25(kb, collection):
    texts = ["apple banana", "apple apple cherry", "banana cherry durian elderberry"]
    kb.ingest_documents([Document(t, metadata={"source": t}) for t in texts], collection=collection)
    k1, b = kb.settings.bm25_k1, kb.settings.bm25_b
    lengths = [2, 3, 4]
    avgdl = sum(lengths) / 3

    def bm25(tf: int, df: int, length: int) -> float:
        idf = math.log(1 + (3 - df + 0.5) / (df + 0.5))
        return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl))

    hits = {h.content: h.scores["lexical_score"] for h in kb.search_hits("apple", collection=collection, mode="lexical")}
    assert hits["apple apple cherry"] == pytest.approx(bm25(2, 2, 3))
    assert hits["apple banana"] == pytest.approx(bm25(1, 2, 2))


def test_similar_duplicates_and_outliers(kb, collection, cli_env, monkeypatch):
    passage = "Sea otters crack open shellfish with rocks they keep in a pouch under their forelegs."
    docs = [Document(text, metadata={"source": f"d{i}"}) for i, text in enumerate(DISTRACTORS)]
    docs += [Document(passage, metadata={"source": "otters-1"}), Document(passage + " ", metadata={"source": "otters-2"}),
             Document("zx 8812 qv ## 77 ;; kk 09", metadata={"source": "junk"})]
    report = kb.ingest_documents(docs, collection=collection)
    assert [{p["source_a"], p["source_b"]} for p in report.duplicates] == [{"otters-1", "otters-2"}]

    pairs = kb.duplicates(collection=collection, threshold=0.95)
    assert [{p["source_a"], p["source_b"]} for p in pairs] == [{"otters-1", "otters-2"}]
    assert pairs[0]["similarity"] > 0.99
    assert kb.outliers(collection=collection, k=1)[0]["source"] == "junk"
    like_document = kb.similar("otters-1", collection=collection, k=3)
    assert like_document[0]["source"] == "otters-2" and len(like_document) == 3
    like_chunk = kb.similar(pairs[0]["chunk_a"], collection=collection, k=2)
    assert like_chunk[0]["chunk_id"] == pairs[0]["chunk_b"]
    with pytest.raises(DocumentNotFound):
        kb.similar("no-such-source", collection=collection)

    monkeypatch.setenv("PGRAG_DATA_DIR", cli_env["PGRAG_DATA_DIR"])
    for command in (["duplicates"], ["outliers", "-k", "1"], ["similar", "otters-1", "-k", "1"]):
        result = CliRunner().invoke(app, [*command, "-c", collection])
        assert result.exit_code == 0 and ("otters" in result.stdout or "junk" in result.stdout), result.output


def test_bounded_lexical_leg_scores_its_candidates_exactly(kb, planted):
    """With a depth of 2 postings per term the leg reads almost nothing, yet every score it returns is the exact
    BM25 score, and with the default depth it returns what reading whole posting lists returns."""
    query = "contractor roof concrete estimates road kitchen"

    def hits(depth: int, k: int = 10) -> dict[int, float]:
        kb.retrieval.settings = kb.settings.model_copy(update={"lexical_depth": depth})
        try:
            return {h.chunk_id: h.scores["lexical_score"]
                    for h in kb.search_hits(query, collection=planted, mode="lexical", k=k)}
        finally:
            kb.retrieval.settings = kb.settings

    every_match = hits(0, k=100)
    shallow = hits(2)
    assert hits(kb.settings.lexical_depth) == hits(0)
    assert shallow and all(score == pytest.approx(every_match[chunk_id]) for chunk_id, score in shallow.items())


def test_a_search_holds_no_connection_while_it_encodes_the_query(settings, kb, collection):
    """Under load, encoding is the slow part: a connection held through it starved 50 concurrent searches of the
    pool (QueuePool timeouts). The real encoder, watched: no connection is checked out while it runs."""
    from langchain_core.embeddings import Embeddings

    from pgrag.kb import KnowledgeBase

    encoder = kb.models.embeddings.for_space(384)

    class Watched(Embeddings):
        held: list[int] = []

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return encoder.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            Watched.held.append(watched.engine.pool.checkedout())
            return encoder.embed_query(text)

    with KnowledgeBase(settings, embeddings=Watched()) as watched:
        watched.ingest_documents([Document(t, metadata={"source": f"d{i}"}) for i, t in enumerate(DISTRACTORS[:3])],
                                 collection=collection)
        assert watched.search("glaciers and valleys", collection=collection, k=1)
    assert Watched.held == [0]


def test_a_bulk_load_builds_the_vector_index_and_postings_after_it(kb, collection):
    """A load that at least doubles a collection writes its vectors with no HNSW index and its chunks with no
    postings, and builds both at the end (several times faster than inserting into them); smaller loads insert;
    what a crash left out is built by the next ingest, exactly, writes made meanwhile included."""
    from pgrag.db import spaces
    from pgrag.kb import BULK_LOAD_MIN_DOCUMENTS

    def index_valid() -> bool | None:
        with kb.engine.connect() as conn:
            space = spaces.active_space(conn, spaces.collection_id(conn, collection))
            return conn.execute(sa.text("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                        "WHERE c.relname = :n"), {"n": space.index_name}).scalar()

    words = DISTRACTORS + CONTRACTORS
    docs = [Document(f"{words[i % len(words)]} (note {i})", metadata={"source": f"n{i}"})
            for i in range(BULK_LOAD_MIN_DOCUMENTS)]
    report = kb.ingest_documents(docs, collection=collection, split=False)
    assert report.chunks == BULK_LOAD_MIN_DOCUMENTS and report.duplicates is None and index_valid()
    assert_statistics_exact(kb, collection)

    report = kb.ingest_documents([Document(PARAPHRASE_PASSAGE, metadata={"source": "p"})], collection=collection)
    assert report.duplicates == [] and index_valid()
    assert contents(kb, PARAPHRASE_QUERY, collection, "dense")[0] == PARAPHRASE_PASSAGE

    with kb.engine.connect() as conn:
        space = spaces.active_space(conn, spaces.collection_id(conn, collection))
    spaces.drop_vector_index(kb.engine, space)  # as a bulk load that was killed leaves it
    with kb.engine.begin() as conn:
        conn.execute(sa.text("UPDATE collections SET postings_deferred = true WHERE id = :id"),
                     {"id": space.collection_id})
    assert kb.delete("n1", collection=collection)  # a write while deferred keeps the totals only
    kb.ingest_documents([Document(RARE_PASSAGE, metadata={"source": "r"})], collection=collection)
    assert index_valid()
    assert_statistics_exact(kb, collection)
    assert contents(kb, RARE_PASSAGE, collection, "lexical")[0] == RARE_PASSAGE
