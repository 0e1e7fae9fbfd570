"""Embedding spaces: the model guard, zero-downtime resumable reindex, truncation, prefixes and halfvec."""

import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from langchain_core.documents import Document

from pgrag.config import Settings
from pgrag.errors import EmbeddingModelMismatch, EmbeddingProviderError, InvalidInput
from pgrag.kb import KnowledgeBase
from pgrag.providers.embeddings import SpaceEmbeddings
from pgrag.specs import EmbeddingSpec
from corpus import DISTRACTORS, PARAPHRASE_PASSAGE, PARAPHRASE_QUERY

SPEC_B = "huggingface:sentence-transformers/all-MiniLM-L6-v2?dimensions=128&query_prefix=query: "


@pytest.fixture(scope="module")
def kb_b(settings):
    with KnowledgeBase.open(settings, embeddings=SPEC_B) as kb:
        yield kb


def ingest_corpus(kb, collection):
    docs = [Document(t, metadata={"source": f"d{i}"}) for i, t in enumerate([*DISTRACTORS, PARAPHRASE_PASSAGE])]
    kb.ingest_documents(docs, collection=collection)


def test_swap_model_by_config_guard_reindex_search(kb, kb_b, collection):
    ingest_corpus(kb, collection)
    with pytest.raises(EmbeddingModelMismatch) as error:
        kb_b.search_hits(PARAPHRASE_QUERY, collection=collection)
    message = str(error.value)
    assert "all-MiniLM-L6-v2" in message and "dimensions=128" in message and "pgrag reindex" in message
    with pytest.raises(EmbeddingModelMismatch):
        kb_b.ingest_documents([Document("new", metadata={"source": "n"})], collection=collection)

    report = kb.reindex(EmbeddingSpec.parse(SPEC_B), collection=collection)
    assert report.embedded == len(DISTRACTORS) + 1
    hits = kb_b.search_hits(PARAPHRASE_QUERY, collection=collection, mode="dense", k=3)
    assert PARAPHRASE_PASSAGE in [h.content for h in hits]
    with pytest.raises(EmbeddingModelMismatch):  # the old model is now the one that does not match
        kb.search_hits(PARAPHRASE_QUERY, collection=collection)

    rows = {row["status"]: row for row in kb.spaces(collection=collection)}
    assert rows["active"]["dimension"] == 128 and rows["active"]["vectors"] == len(DISTRACTORS) + 1
    assert rows["retired"]["dimension"] == 384
    assert kb.drop_retired(collection=collection) == len(DISTRACTORS) + 1
    assert {row["status"]: row["vectors"] for row in kb.spaces(collection=collection)}["retired"] == 0
    assert kb.reindex(EmbeddingSpec.parse(SPEC_B), collection=collection).already_active


def test_reindex_resumes_after_kill_and_search_serves_meanwhile(kb, collection, cli_env):
    docs = [Document(f"{text} Record {i}.", metadata={"source": f"r{i}"})
            for i, text in enumerate(DISTRACTORS * 8)]
    kb.ingest_documents(docs, collection=collection)
    env = {**cli_env, "PGRAG_EMBED_BATCH_SIZE": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "pgrag.cli", "reindex", "-c", collection, "--embeddings", SPEC_B],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def building_vectors() -> int:
        rows = [r for r in kb.spaces(collection=collection) if r["status"] == "building"]
        return rows[0]["vectors"] if rows else 0

    deadline = time.monotonic() + 120
    while building_vectors() < 32 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert kb.search_hits("honeybees dance", collection=collection, mode="hybrid")  # the old space still serves
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = building_vectors()
    assert 32 <= partial < len(docs)

    report = kb.reindex(EmbeddingSpec.parse(SPEC_B), collection=collection)
    assert report.embedded == len(docs) - partial  # continued where the killed run stopped
    statuses = {row["status"]: row["vectors"] for row in kb.spaces(collection=collection)}
    assert statuses == {"active": len(docs), "retired": len(docs)}


def test_halfvec_storage_halves_vector_size_and_searches(kb, collection):
    ingest_corpus(kb, collection)
    kb.reindex(EmbeddingSpec.parse("huggingface:sentence-transformers/all-MiniLM-L6-v2"), collection=collection,
               storage="halfvec")
    hits = kb.search_hits(PARAPHRASE_QUERY, collection=collection, mode="dense", k=3)
    assert PARAPHRASE_PASSAGE in [h.content for h in hits]
    with kb.engine.connect() as conn:
        sizes = dict(conn.execute(sa.text(
            "SELECT s.storage, avg(coalesce(pg_column_size(e.embedding), pg_column_size(e.embedding_half)))::float8 "
            "FROM chunk_embeddings e JOIN embedding_spaces s ON s.id = e.space_id JOIN collections c "
            "ON c.id = s.collection_id WHERE c.name = :c GROUP BY s.storage"), {"c": collection}).all())
    assert sizes["halfvec"] < 0.6 * sizes["vector"]


def test_prefixes_and_truncation_are_applied_consistently(kb):
    spec = EmbeddingSpec.parse(SPEC_B)
    space = SpaceEmbeddings(kb.models.embeddings.base, spec)
    query = space.embed_query("bees")
    assert len(query) == 128 and abs(sum(x * x for x in query) - 1) < 1e-5
    assert query == pytest.approx(SpaceEmbeddings(kb.models.embeddings.base, EmbeddingSpec.parse(
        "huggingface:sentence-transformers/all-MiniLM-L6-v2?dimensions=128")).embed_query("query: bees"))


def test_wrong_dimension_from_provider_is_an_error(kb):
    space = SpaceEmbeddings(kb.models.embeddings.base, kb.models.embedding_spec, dimension=768)
    with pytest.raises(EmbeddingProviderError, match="384 dimensions where 768"):
        space.embed_documents(["x"])


def test_bad_spec_options_are_rejected():
    with pytest.raises(InvalidInput, match="Unknown embedding option"):
        EmbeddingSpec.parse("huggingface:m?dimension=3")
    with pytest.raises(InvalidInput, match="positive integer"):
        EmbeddingSpec.parse("huggingface:m?dimensions=abc")
    assert Settings(embeddings=SPEC_B).embeddings == SPEC_B
