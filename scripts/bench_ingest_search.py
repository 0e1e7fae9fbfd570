"""Benchmark for the end-to-end slice: ingest throughput vs raw encode, hybrid search latency, ask cold start.

    .venv/bin/python scripts/bench_ingest_search.py [--docs 1500] [--search-chunk-size 300] [--queries 300]

Uses SciFact abstracts from ../shared/data/scifact as text (evaluation data, read in place, never copied).
Figures are medians or percentiles over one run, with the baseline (raw ``encode`` of the same chunks by the
same model) measured in the same run. Writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from pgrag.config import Settings
from pgrag.evaluation.beir import load_beir
from pgrag.ingest.loaders import Section
from pgrag.ingest.splitting import Splitter
from pgrag.kb import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    parser.add_argument("--docs", type=int, default=1500, help="abstracts for the ingest throughput run")
    parser.add_argument("--search-chunk-size", type=int, default=300, help="small chunks give ≥10k for latency")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench_ingest_search.json")
    parser.add_argument("--only", choices=["ingest", "search", "cold-start"], action="append",
                        help="run only these parts (repeatable); cold-start asks the bench-search collection")
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="pgrag-bench-"))
    data_dir.chmod(0o755)
    dataset = load_beir(args.dataset)
    docs = list(dataset.documents())
    results: dict[str, object] = {"machine": f"{os.cpu_count()} cores"}
    parts = set(args.only or ["ingest", "search", "cold-start"])
    if "ingest" in parts:
        results["ingest"] = bench_ingest(data_dir, docs[: args.docs])
    if "search" in parts:
        results["search"] = bench_search(data_dir, docs, dataset, args.search_chunk_size, args.queries)
    if "cold-start" in parts:
        results["ask_cold_start_s"] = bench_cold_start(data_dir, next(iter(dataset.queries.values())))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


def bench_ingest(data_dir: Path, subset: list) -> dict[str, float]:
    """End-to-end ingest rate vs the raw encode rate of the same chunks by the same model, in one run."""
    with KnowledgeBase(Settings(data_dir=data_dir, reranker="none")) as kb:
        splitter = Splitter(kb.settings.chunk_size, kb.settings.chunk_overlap)
        chunk_texts = [c.text for d in subset for c in splitter.split([Section(d.page_content)], "text")]
        kb.models.embeddings.embed_documents(chunk_texts[:64])  # warm-up: first call pays one-off costs
        started = time.perf_counter()
        kb.models.embeddings.embed_documents(chunk_texts)
        encode_rate = len(chunk_texts) / (time.perf_counter() - started)
        report = kb.ingest_documents(subset, collection=f"bench-ingest-{int(time.time())}")  # fresh every run
    result = {
        "documents": len(subset), "chunks": report.chunks,
        "raw_encode_chunks_per_s": round(encode_rate, 2),
        "ingest_chunks_per_s": round(report.chunks_per_second, 2),
        "ingest_vs_encode": round(report.chunks_per_second / encode_rate, 3),
    }
    print(json.dumps(result), flush=True)
    return result


def bench_search(data_dir: Path, docs: list, dataset, chunk_size: int, n_queries: int) -> dict[str, object]:
    """Latency of each search mode (in-process, reranking off) over a collection of small chunks."""
    small = {"chunk_size": chunk_size, "chunk_overlap": 30}
    with KnowledgeBase(Settings(data_dir=data_dir, reranker="none", **small)) as kb:
        kb.ingest_documents(docs, collection="bench-search")
        chunks = kb.collections()
        queries = list(dataset.queries.values())[:n_queries]
        timings: dict[str, list[float]] = {}
        for mode in ("dense", "lexical", "hybrid"):
            kb.search_hits(queries[0], collection="bench-search", mode=mode)
            timings[mode] = []
            for query in queries:
                started = time.perf_counter()
                kb.search_hits(query, collection="bench-search", mode=mode, k=10)
                timings[mode].append((time.perf_counter() - started) * 1000)
        embed = []
        for query in queries:
            started = time.perf_counter()
            kb.models.embeddings.embed_query(query)
            embed.append((time.perf_counter() - started) * 1000)
        result = {
            "chunks": next(c["chunk_count"] for c in chunks if c["name"] == "bench-search"),
            "queries": len(queries),
            **{f"{mode}_ms": {"p50": round(statistics.median(t), 2), "p95": round(percentile(t, 0.95), 2)}
               for mode, t in timings.items()},
            "query_embedding_ms_p50": round(statistics.median(embed), 2),
        }
    print(json.dumps(result), flush=True)
    return result


def bench_cold_start(data_dir: Path, question: str) -> dict[str, object]:
    """Wall time of `pgrag ask` in a fresh process: server start, model loads, retrieval, generation."""
    env = {**os.environ, "PGRAG_DATA_DIR": str(data_dir), "PGRAG_RERANKER": "none"}
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pgrag.cli", "ask", question, "-c", "bench-search"], env=env,
                       cwd=ROOT, check=True, capture_output=True)
        runs.append(time.perf_counter() - started)
    result = {"median": round(statistics.median(runs), 2), "runs": [round(r, 2) for r in runs]}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
