"""Benchmark embedding spaces: reindex vs fresh ingest throughput, search latency during a reindex vs idle,
and vector vs halfvec storage size and retrieval quality.

    .venv/bin/python scripts/bench_spaces.py --data-dir DIR [--docs 600] [--eval-collection beir-scifact]

Throughput and latency use a fresh collection of SciFact abstracts, reindexed by `pgrag reindex` in its own
process while this one searches at a steady rate; the halfvec quality check re-scores the
dense leg of an already ingested BEIR collection (`pgrag eval` makes one) with its stored vectors cast to
halfvec, exactly (no index), so the difference is the precision loss alone. Writes JSON to --out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pgvector import Vector
from ranx import Qrels, Run, evaluate

from pgrag.config import Settings
from pgrag.db import spaces
from pgrag.evaluation.beir import load_beir
from pgrag.kb import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def search_latencies(kb: KnowledgeBase, collection: str, queries: list[str], count: int,
                     rate: float | None = None, until: Callable[[], bool] = lambda: False) -> list[float]:
    """Latencies (ms) of hybrid searches, back to back or paced at ``rate`` per second, stopping after ``count``
    or as soon as ``until()`` is true."""
    latencies: list[float] = []
    for query in itertools.islice(itertools.cycle(queries), count):
        if until():
            break
        started = time.perf_counter()
        kb.search_hits(query, collection=collection, mode="hybrid", k=10)
        latencies.append((time.perf_counter() - started) * 1000)
        if rate:
            time.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
    return latencies


def reindex_under_load(kb: KnowledgeBase, collection: str, queries: list[str], chunks: int, rate: float,
                       background: bool) -> dict[str, Any]:
    """Run `pgrag reindex` in its own process, as users do, while this process searches at ``rate`` queries/s."""
    idle = search_latencies(kb, collection, queries, 200, rate)
    command = [str(Path(sys.executable).parent / "pgrag"), "reindex", "-c", collection, "--embeddings",
               kb.settings.embeddings, "--storage", "halfvec", "--background" if background else "--no-background"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, "PGRAG_DATA_DIR": str(kb.settings.data_dir)},
                               stdout=subprocess.DEVNULL)
    during = search_latencies(kb, collection, queries, 10**9, rate, until=lambda: process.poll() is not None)
    if process.wait() != 0:
        raise RuntimeError(f"{' '.join(command)} failed")
    seconds = time.perf_counter() - started
    return {"reindex_chunks_per_s": round(chunks / seconds, 2),
            "search_idle_ms": {"p50": round(statistics.median(idle), 2), "p95": round(p95(idle), 2)},
            "search_during_reindex_ms": {"p50": round(statistics.median(during), 2), "p95": round(p95(during), 2),
                                         "queries": len(during)},
            "p95_during_vs_idle": round(p95(during) / p95(idle), 3)}


def storage_sizes(kb: KnowledgeBase, collection: str) -> dict[str, float]:
    """Bytes per stored vector and per HNSW index entry, scaled to 100k chunks."""
    with kb.engine.connect() as conn:
        collection_id = spaces.collection_id(conn, collection)
        result = {}
        for space in spaces.spaces_of(conn, collection_id):
            column = space.column
            per_row = conn.execute(sa.text(
                f"SELECT avg(pg_column_size({column})) FROM chunk_embeddings WHERE space_id = :s"),
                {"s": space.id}).scalar()
            rows = conn.execute(sa.text("SELECT count(*) FROM chunk_embeddings WHERE space_id = :s"),
                                {"s": space.id}).scalar()
            index_bytes = conn.execute(sa.text("SELECT pg_relation_size(CAST(:i AS regclass))"),
                                       {"i": space.index_name}).scalar()
            result[space.storage] = {
                "vector_bytes_per_chunk": round(float(per_row), 1),
                "vectors_mb_per_100k": round(float(per_row) * 100_000 / 2**20, 1),
                "hnsw_index_mb_per_100k": round(index_bytes / rows * 100_000 / 2**20, 1),
            }
    return result


def halfvec_quality(kb: KnowledgeBase, dataset_dir: Path, collection: str) -> dict[str, dict[str, float]]:
    """Dense-leg nDCG@10 / recall@100 with the stored vectors as float4 vs cast to float2 (exact search)."""
    dataset = load_beir(dataset_dir)
    runs: dict[str, dict[str, dict[str, float]]] = {"vector": {}, "halfvec": {}}
    with kb.engine.begin() as conn:
        space = spaces.active_space(conn, spaces.collection_id(conn, collection))
        vectors = kb.models.embeddings.embed_documents(list(dataset.queries.values()))
        for kind in runs:
            cast = f"{kind}({space.dimension})"
            sql = sa.text(
                f"SELECT d.source, 1 - (e.embedding::{cast} <=> CAST(:q AS {cast})) AS score "
                "FROM chunk_embeddings e JOIN chunks c ON c.id = e.chunk_id JOIN documents d ON d.id = c.document_id "
                f"WHERE e.space_id = :s ORDER BY e.embedding::{cast} <=> CAST(:q AS {cast}) LIMIT 100")
            conn.execute(sa.text("SET LOCAL enable_indexscan = off"))  # exact: compare precision, not the index
            for qid, vector in zip(dataset.queries, vectors, strict=True):
                rows = conn.execute(sql, {"q": Vector(vector).to_text(), "s": space.id}).all()
                runs[kind][qid] = {source: float(score) for source, score in rows}
    qrels = Qrels(dataset.qrels)
    return {kind: {m: round(float(v), 4) for m, v in evaluate(qrels, Run(run), ["ndcg@10", "recall@100"]).items()}
            for kind, run in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--search-rate", type=float, default=20.0, help="Searches per second during the reindex.")
    parser.add_argument("--no-background", dest="background", action="store_false",
                        help="Run the reindex at normal CPU priority (default: pgrag's background priority).")
    parser.add_argument("--eval-collection", default="beir-scifact")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench_spaces.json")
    args = parser.parse_args()
    dataset = load_beir(args.dataset)
    queries = list(dataset.queries.values())
    collection = f"bench-spaces-{int(time.time())}"
    results: dict[str, object] = {}
    with KnowledgeBase(Settings(data_dir=args.data_dir, reranker="none")) as kb:
        ingest = kb.ingest_documents(list(dataset.documents())[: args.docs], collection=collection)
        results["ingest_chunks_per_s"] = round(ingest.chunks_per_second, 2)
        results["search_rate_per_s"] = args.search_rate
        results.update(reindex_under_load(kb, collection, queries, ingest.chunks, args.search_rate, args.background))
        results["reindex_vs_ingest"] = round(results["reindex_chunks_per_s"] / results["ingest_chunks_per_s"], 3)
        results["storage"] = storage_sizes(kb, collection)
        print(json.dumps(results), flush=True)
        results["halfvec_quality"] = halfvec_quality(kb, args.dataset, args.eval_collection)
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
