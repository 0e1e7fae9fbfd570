"""`pgrag eval`: run every retrieval mode over a BEIR dataset and score it with ranx, beside reference baselines
computed in the same run (``bm25s`` for the lexical leg, ranx's fusion of bm25s + pgrag's dense leg)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ranx import Qrels, Run, evaluate, fuse

from pgrag.evaluation.beir import BeirDataset

if TYPE_CHECKING:
    from pgrag.kb import KnowledgeBase

METRICS = ["ndcg@10", "recall@100", "mrr@10", "hit_rate@5"]
DEPTH = 100  # results kept per query: what recall@100 needs


@dataclass
class ModeResult:
    name: str
    metrics: dict[str, float]
    queries_per_second: float | None
    note: str = ""


@dataclass
class Report:
    dataset: str
    split_queries: int
    collection: str
    settings: dict[str, Any]
    results: list[ModeResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


RunDict = dict[str, dict[str, float]]


def ranked_run(search: Callable[[str], list[str]], queries: dict[str, str]) -> tuple[RunDict, float]:
    """Run ``search`` (query text → doc ids, best first) on every query; scores encode rank for ranx.
    A document split into several chunks counts at its best-ranked chunk."""
    run: RunDict = {}
    started = time.perf_counter()
    for qid, text in queries.items():
        ranking: dict[str, float] = {}
        for doc_id in search(text):
            if doc_id not in ranking:
                ranking[doc_id] = float(DEPTH - len(ranking))
        run[qid] = ranking or {"__none__": 0.0}
    return run, len(queries) / (time.perf_counter() - started)


def pgrag_search(kb: KnowledgeBase, dataset: BeirDataset, collection: str, **options: Any) -> Callable[[str], list[str]]:
    retriever = kb.retriever(collection=collection, k=DEPTH, **options)
    return lambda text: [dataset.doc_id(doc.metadata["source"]) for doc in retriever.invoke(text)]


def bm25s_run(dataset: BeirDataset, k1: float, b: float) -> tuple[RunDict, float]:
    """Reference BM25 from a kept library, with the same Snowball English stemmer and stop words."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    doc_ids = list(dataset.corpus)
    texts = [f"{title}\n\n{text}".strip() for title, text in dataset.corpus.values()]
    index = bm25s.BM25(k1=k1, b=b, method="lucene")
    index.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)

    def search(text: str) -> list[str]:
        tokens = bm25s.tokenize([text], stopwords="en", stemmer=stemmer, show_progress=False)
        if not tokens.ids[0]:
            return []
        results, scores = index.retrieve(tokens, k=min(DEPTH, len(doc_ids)), show_progress=False)
        return [doc_ids[i] for i, score in zip(results[0], scores[0]) if score > 0]

    return ranked_run(search, dataset.queries)


def score(qrels: Qrels, run: RunDict, name: str) -> dict[str, float]:
    values = evaluate(qrels, Run(run, name=name), METRICS, make_comparable=True)
    return {metric: round(float(values[metric]), 4) for metric in METRICS}


def evaluate_dataset(
    kb: KnowledgeBase,
    dataset: BeirDataset,
    collection: str,
    *,
    expansion: str,
    with_baselines: bool = True,
    only: set[str] | None = None,
    on_mode: Callable[[str], None] = lambda name: None,
) -> Report:
    settings = kb.settings
    reranking = kb.models.cross_encoder is not None
    report = Report(
        dataset=dataset.name,
        split_queries=len(dataset.queries),
        collection=collection,
        settings={key: getattr(settings, key) for key in (
            "embeddings", "reranker", "fusion", "rrf_k", "bm25_k1", "bm25_b", "rerank_candidates")}
        | dict(zip(("dense_weight", "lexical_weight"), settings.fusion_weights)) | {"expansion": expansion},
    )
    qrels = Qrels(dataset.qrels)
    modes: list[tuple[str, dict[str, Any]]] = [
        ("dense", {"mode": "dense", "rerank": False}),
        ("lexical", {"mode": "lexical", "rerank": False}),
        ("hybrid", {"mode": "hybrid", "rerank": False}),
        ("hybrid+expansion", {"mode": "hybrid", "rerank": False, "expansion": expansion}),
        ("hybrid+rerank", {"mode": "hybrid", "rerank": True}),
        ("full", {"mode": "hybrid", "rerank": True, "expansion": expansion}),
    ]
    runs: dict[str, RunDict] = {}
    for name, options in modes:
        if only and name not in only:
            continue
        if options.get("rerank") and not reranking:
            report.results.append(ModeResult(name, {}, None, "skipped: no reranker configured (PGRAG_RERANKER)"))
            continue
        if options.get("expansion") == "none":
            report.results.append(ModeResult(name, {}, None, "skipped: expansion is none"))
            continue
        on_mode(name)
        runs[name], qps = ranked_run(pgrag_search(kb, dataset, collection, **options), dataset.queries)
        report.results.append(ModeResult(name, score(qrels, runs[name], name), round(qps, 2)))
    if with_baselines:
        on_mode("bm25s baseline")
        bm25, qps = bm25s_run(dataset, settings.bm25_k1, settings.bm25_b)
        report.results.append(ModeResult("bm25s (reference)", score(qrels, bm25, "bm25s"), round(qps, 2)))
        dense = Run(runs["dense"] if "dense" in runs else ranked_run(
            pgrag_search(kb, dataset, collection, mode="dense", rerank=False), dataset.queries)[0], name="dense")
        for method, params, label in (
            ("rrf", {"k": int(settings.rrf_k)}, f"ranx rrf(k={int(settings.rrf_k)}) bm25s+dense"),
            ("wsum", {"weights": [0.5, 0.5]}, "ranx min-max wsum 0.5/0.5 bm25s+dense"),
        ):
            fused = fuse([Run(bm25, name="bm25s"), dense], norm="min-max", method=method, params=params)
            report.results.append(ModeResult(f"{label} (reference)", score(qrels, fused.to_dict(), label), None))
    return report
