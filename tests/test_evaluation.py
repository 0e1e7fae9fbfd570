"""The BEIR evaluation runner and reranker training on a tiny BEIR-format dataset that the test writes, and the
committed answer sets' shape."""

import json
from pathlib import Path

import pytest
from langchain_core.documents import Document
from typer.testing import CliRunner

from pgrag.cli import app
from pgrag.evaluation.answers import load_cases
from pgrag.evaluation.beir import CORPUS_CHUNKING, holdout, load_beir
from pgrag.evaluation.runner import METRICS, evaluate_dataset
from pgrag.kb import KnowledgeBase
from pgrag.training import BLEND_WEIGHTS
from pgrag.chains.rerank import blend
from corpus import DISTRACTORS

QUERIES = {
    "q1": ("How do bees tell the hive where flowers are?", "d11"),
    "q2": ("what damages coral reefs", "d16"),
    "q3": ("Why do runners eat pasta before a marathon?", "d9"),
    "q4": ("how do solar cells make electricity", "d21"),
    "q5": ("who were the pyramids built for", "d27"),
    "q6": ("social structure of wolf packs", "d23"),
}


@pytest.fixture(scope="module")
def tiny_beir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-beir")
    (folder / "qrels").mkdir()
    (folder / "corpus.jsonl").write_text("\n".join(
        json.dumps({"_id": f"d{i}", "title": "", "text": text}) for i, text in enumerate(DISTRACTORS)))
    (folder / "queries.jsonl").write_text("\n".join(
        json.dumps({"_id": qid, "text": text}) for qid, (text, _) in QUERIES.items()))
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{qid}\t{doc}\t1\n" for qid, (_, doc) in QUERIES.items()))
    return folder


@pytest.fixture(scope="module")
def corpus_kb(settings):
    with KnowledgeBase.open(settings, **CORPUS_CHUNKING) as kb:
        yield kb


def test_eval_reports_every_mode_with_metrics(corpus_kb, tiny_beir):
    dataset = load_beir(tiny_beir)
    corpus_kb.ingest_documents(dataset.documents(), collection="tiny-eval")
    report = evaluate_dataset(corpus_kb, dataset, "tiny-eval", expansion="prf")
    results = {row.name: row for row in report.results}
    for mode in ("dense", "lexical", "hybrid", "hybrid+expansion", "bm25s (reference)"):
        assert set(results[mode].metrics) == set(METRICS), mode
    assert results["hybrid"].metrics["recall@100"] == 1.0 and results["dense"].metrics["ndcg@10"] > 0.8
    assert "no reranker" in results["hybrid+rerank"].note


def test_a_file_corpus_is_ingested_as_files_and_judged_by_page(kb, tmp_path, collection):
    pages = tmp_path / "manual"
    (pages / "tools").mkdir(parents=True)
    for i, text in enumerate(DISTRACTORS[:12]):
        filler = "\n\n".join(f"Section {j} of this page repeats: {text}" for j in range(8))
        (pages / "tools" / f"page{i}.md").write_text(f"# Page {i}\n\n{filler}\n")
    folder = tmp_path / "dataset"
    (folder / "qrels").mkdir(parents=True)
    (folder / "files.json").write_text(json.dumps({"root": str(pages), "include": ["*.md"]}))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "how do bees tell the hive where flowers are"}))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ttools/page11.md\t1\n")
    dataset = load_beir(folder)
    assert len(dataset.corpus) == 12 and dataset.chunking == {}
    dataset.ingest(kb, collection)
    assert sum(doc["chunks"] for doc in kb.documents(collection=collection)) > 12  # chunked, not whole
    report = evaluate_dataset(kb, dataset, collection, expansion="none", with_baselines=False, only={"hybrid"})
    assert report.results[0].metrics["mrr@10"] == 1.0


def test_holdout_is_reproducible_and_disjoint():
    ids = [f"q{i}" for i in range(100)]
    train, held = holdout(ids, 0.25, seed=7)
    assert (train, held) == holdout(list(reversed(ids)), 0.25, seed=7)
    assert len(held) == 25 and not set(train) & set(held) and set(train) | set(held) == set(ids)


def test_train_reranker_then_use_it(tiny_beir, tmp_path, cli_env, monkeypatch):
    for key in ("PGRAG_DATA_DIR",):
        monkeypatch.setenv(key, cli_env[key])
    out = tmp_path / "reranker"
    result = CliRunner().invoke(app, ["train-reranker", str(tiny_beir), "--out", str(out), "--max-steps", "3",
                                      "--batch-size", "4", "--negatives", "2", "--holdout", "0.34",
                                      "--collection", "tiny-train"])
    assert result.exit_code == 0, result.output
    held = (out / "heldout_queries.txt").read_text().split()
    trained, validation = ((out / f"{name}_queries.txt").read_text().split() for name in ("train", "validation"))
    assert len(held) == 2 and len(trained) == 3 and len(validation) == 1
    record = json.loads((out / "pgrag-reranker.json").read_text())
    assert record["blend_weight"] in BLEND_WEIGHTS and len(record["validation_ndcg@10"]) == len(BLEND_WEIGHTS)

    monkeypatch.setenv("PGRAG_RERANKER", f"huggingface:{out}")
    result = CliRunner().invoke(app, ["search", "bees and flowers", "-c", "tiny-train", "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    assert all("rerank" in hit["scores"] for hit in json.loads(result.stdout))


def test_blend_follows_the_weight():
    first_stage, scores = ["a", "b", "c", "d"], [0.1, 0.2, 0.3, 0.9]
    assert blend(first_stage, scores, None, rrf_k=5) == ["d", "c", "b", "a"]
    assert blend(first_stage, scores, 0.0, rrf_k=5) == first_stage
    # Equal weights: "d" (4th, then 1st) ties with "a" (1st, then 4th) and overtakes "b" and "c"; ties keep
    # the first-stage order.
    assert blend(first_stage, scores, 1.0, rrf_k=5) == ["a", "d", "b", "c"]


def test_train_embeddings_then_embed_with_them(tiny_beir, tmp_path, cli_env, monkeypatch, settings):
    monkeypatch.setenv("PGRAG_DATA_DIR", cli_env["PGRAG_DATA_DIR"])
    out = tmp_path / "embeddings"
    result = CliRunner().invoke(app, ["train-embeddings", str(tiny_beir), "--out", str(out), "--max-steps", "2",
                                      "--batch-size", "4", "--negatives", "2", "--holdout", "0.34",
                                      "--collection", "tiny-train"])
    assert result.exit_code == 0, result.output
    assert len((out / "heldout_queries.txt").read_text().split()) == 2

    from pgrag.providers.embeddings import load_embeddings
    from pgrag.specs import EmbeddingSpec

    vector = load_embeddings(EmbeddingSpec.parse(f"huggingface:{out}"), settings).embed_query("bees and flowers")
    assert len(vector) == 384


def test_tune_writes_questions_resumes_and_trains_without_labels(corpus_kb, tmp_path, cli_env, monkeypatch):
    monkeypatch.setenv("PGRAG_DATA_DIR", cli_env["PGRAG_DATA_DIR"])
    # Passages of three sentences: the sample takes chunks long enough to answer a question on their own.
    passages = [" ".join(DISTRACTORS[i:i + 3]) for i in range(0, 30, 3)]
    corpus_kb.ingest_documents([Document(text, metadata={"source": f"p{i}"}) for i, text in enumerate(passages)],
                               collection="tiny-tune")
    out = tmp_path / "tuned"
    args = ["tune", "-c", "tiny-tune", "--sample", "10", "--out", str(out), "--max-steps", "2", "--batch-size", "4",
            "--negatives", "2", "--validation", "0.3", "--chat-model", "llamacpp:qwen2.5-0.5b"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and sum(row["question"] is not None for row in rows) >= 6
    assert all(row["question"].endswith("?") for row in rows if row["question"])
    record = json.loads((out / "pgrag-reranker.json").read_text())
    assert record["synthetic_questions"] >= 6 and record["blend_weight"] in BLEND_WEIGHTS
    # A second run finds every question written: nothing is asked again, nothing appended.
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len((out / "questions.jsonl").read_text().splitlines()) == 10


@pytest.mark.parametrize("name", ["python-docs.jsonl", "postgres-docs.jsonl"])
def test_the_committed_answer_sets_are_well_formed(name):
    """Each answer set loads, mixes answerable and unanswerable questions, and no answer key is matched by its own
    question (a key the question gives away would count an echo as a right answer)."""
    cases = load_cases(Path(__file__).parents[1] / "docs" / "eval" / name)
    assert {case.answerable for case in cases} == {True, False} and len({case.id for case in cases}) == len(cases)
    assert not [case.id for case in cases if case.answerable and (not case.gold or case.key.search(case.question))]
