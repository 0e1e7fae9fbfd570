"""PgragVectorStore against LangChain's standard VectorStore suite, and pgrag's own additions (hybrid default,
scores, MMR, the model guard), on the real database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from pgrag.errors import EmbeddingModelMismatch
from pgrag.kb import KnowledgeBase
from pgrag.vectorstore import PgragVectorStore


@pytest.fixture(scope="module")
def fake_kb(settings) -> Iterator[KnowledgeBase]:
    """One knowledge base with the suite's deterministic embeddings, shared by the module's stores."""
    with KnowledgeBase(settings, embeddings=VectorStoreIntegrationTests.get_embeddings()) as kb:
        yield kb


class TestPgragVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, fake_kb: KnowledgeBase) -> Iterator[PgragVectorStore]:  # type: ignore[override]
        store = PgragVectorStore(knowledge_base=fake_kb, collection=f"vs_{uuid.uuid4().hex[:10]}")
        try:
            yield store
        finally:
            store.delete()

    @property
    def has_async(self) -> bool:
        return False


def test_scores_search_types_and_mmr(kb):
    store = PgragVectorStore(knowledge_base=kb, collection=f"vs_{uuid.uuid4().hex[:10]}")
    texts = ["Owls hunt at night and see well in the dark.", "Owls can turn their heads very far.",
             "Bees dance to tell where flowers are.", "The ferry leaves from pier 4 every hour."]
    ids = store.add_texts(texts, [{"n": i} for i in range(len(texts))])
    assert store.similarity_search("night hunting birds", k=1)[0].page_content == texts[0]
    dense = PgragVectorStore(knowledge_base=kb, collection=store.collection, search_type="dense")
    (doc, score), *_ = dense.similarity_search_with_score("night hunting birds", k=2)
    assert doc.id == ids[0] and doc.metadata == {"n": 0} and 0.3 < score <= 1.0
    picked = store.max_marginal_relevance_search("owls", k=2, fetch_k=4, lambda_mult=0.3)
    assert len(picked) == 2 and picked[0].metadata["n"] in (0, 1)
    assert store.as_retriever(search_kwargs={"k": 1}).invoke("bees")[0].page_content == texts[2]
    store.add_texts(["Owls hunt at night and see well in the dark."], ids=[ids[0]])  # same text: a no-op
    assert len(store.get_by_ids(ids)) == 4


def test_a_collection_of_another_model_is_refused(kb, fake_kb):
    collection = f"vs_{uuid.uuid4().hex[:10]}"
    PgragVectorStore(knowledge_base=kb, collection=collection).add_documents([Document("minilm text")])
    with pytest.raises(EmbeddingModelMismatch):
        PgragVectorStore(knowledge_base=fake_kb, collection=collection).similarity_search("text")
