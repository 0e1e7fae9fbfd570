"""Scale benchmark: search latency per leg, database-side ingest rate and bytes per chunk at 10k / 100k / 1M chunks.

    .venv/bin/python scripts/bench_scale.py [--sizes 10000,100000,1000000] [--data-dir DIR] [--out FILE]

Text: synthetic chunks of 120-180 words made of whole sentences drawn (fixed seed per chunk) from the SciFact and
NFCorpus abstracts in ../shared/data (read in place): a natural Zipfian vocabulary. Vectors: 384-d feature-hashed
bags of words from scripts/openai_embeddings_server.py (VECTORS=hash) reached as ``openai:`` embeddings, so the
encoder costs nearly nothing and ingest measures the database side. Queries: the first 200 SciFact claims, in
process, one at a time, after the next 200 claims have run through every leg untimed (a running server's
caches). The baseline of the lexical leg is measured in the same run: the same statement with
``lexical_depth=0`` (whole posting lists, exact BM25 over every chunk that has a query term), which also
gives the overlap of the bounded leg's top 10 with the exact one.

Each size is its own collection (``scale-10k`` ...). A run resumes a partly built collection: chunk ``i`` is a
pure function of ``i``, and ingest skips sources already stored. Writes JSON (--out) and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from langchain_core.documents import Document
from rich.console import Console
from rich.table import Table

from pgrag.config import Settings
from pgrag.db import spaces, store
from pgrag.kb import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DIMENSION = 384  # the embeddings server's hashed vectors
SPEC = f"openai:hash-{DIMENSION}"
LEGS = ("dense", "lexical", "hybrid")


def sentence_pool() -> list[str]:
    sentences = []
    for name in ("scifact", "nfcorpus"):
        with (DATA / name / "corpus.jsonl").open() as lines:
            for line in lines:
                text = json.loads(line)["text"]
                sentences += [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    return sentences


def synthetic_chunk(i: int, pool: list[str]) -> str:
    """120-180 words of whole sentences, the same for the same ``i`` on every run."""
    rng = random.Random(i)
    target, words, out = rng.randint(120, 180), 0, []
    while words < target:
        sentence = pool[rng.randrange(len(pool))]
        out.append(sentence)
        words += len(sentence.split())
    return " ".join(out)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_embeddings_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "openai_embeddings_server.py"), str(port)],
                              env={**os.environ, "VECTORS": "hash"})
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the embeddings server did not start")


def stored_chunks(kb: KnowledgeBase, collection: str) -> int:
    with kb.engine.connect() as conn:
        return conn.execute(sa.text("SELECT coalesce(max(chunk_count), 0) FROM collections WHERE name = :c"),
                            {"c": collection}).scalar_one()


@contextlib.contextmanager
def database_clock():
    """Seconds spent in each database call of an ingest: the batches' writes (COPY and the statement triggers),
    the postings and vector index built after a bulk load, and ANALYZE. Encoding runs beside the writes in its
    own thread, on the same cores."""
    originals = {(module, name): getattr(module, name) for module, name in (
        (store, "replace_documents"), (store, "rebuild_deferred_postings"), (spaces, "ensure_vector_index"),
        (store, "analyze"))}
    spent = dict.fromkeys((name for _, name in originals), 0.0)

    def timed(name, function):
        def call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started
        return call

    for (module, name), function in originals.items():
        setattr(module, name, timed(name, function))
    try:
        yield spent
    finally:
        for (module, name), function in originals.items():
            setattr(module, name, function)


def build(kb: KnowledgeBase, collection: str, size: int, pool: list[str], console: Console) -> dict:
    """Ingest chunks up to ``size`` in one call (a load that at least doubles the collection is a bulk load:
    postings and vector index built after it); the rates are those of this run's writes, index builds included:
    the whole call, and the database side alone."""
    start_count = stored_chunks(kb, collection)
    if start_count >= size:  # an ingest of nothing still builds what a killed bulk load left out
        kb.ingest_documents([], collection=collection, split=False)
        return {"resumed_from": start_count, "written": 0}
    docs = [Document(synthetic_chunk(i, pool), metadata={"source": f"syn-{i:07d}"}) for i in range(start_count, size)]
    shown = [0]
    started = time.perf_counter()

    def progress(report) -> None:
        if report.chunks - shown[0] >= 50_000:
            shown[0] = report.chunks
            rate = report.chunks / (time.perf_counter() - started)
            console.print(f"{collection}: {start_count + report.chunks:,} chunks, {rate:,.0f}/s")

    with database_clock() as database_seconds:
        report = kb.ingest_documents(docs, collection=collection, split=False, on_progress=progress)
    seconds, database = time.perf_counter() - started, sum(database_seconds.values())
    console.print(f"{collection}: {start_count + report.chunks:,} chunks, {report.chunks / seconds:,.0f} chunks/s "
                  f"({report.chunks / database:,.0f}/s database side)")
    return {"resumed_from": start_count, "written": report.chunks, "seconds": round(seconds, 1),
            "bulk_load": report.duplicates is None, "chunks_per_second": round(report.chunks / seconds, 1),
            "database_seconds": round(database, 1),
            "database_seconds_by_call": {name: round(spent, 1) for name, spent in database_seconds.items()},
            "database_chunks_per_second": round(report.chunks / database, 1)}


def timings(call: Callable[[str], object], queries: list[str]) -> tuple[dict, list]:
    """p50 / p95 / max milliseconds of ``call`` over ``queries`` after 10 warm-up calls, and what it returned."""
    for query in queries[:10]:  # warm the caches and the connection pool
        call(query)
    times, results = [], []
    for query in queries:
        started = time.perf_counter()
        results.append(call(query))
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 0.95), 1),
            "max_ms": round(max(times), 1)}, results


def latencies(kb: KnowledgeBase, collection: str, queries: list[str], mode: str) -> tuple[dict, list[list[int]]]:
    return timings(lambda query: [hit.chunk_id for hit in kb.search_hits(query, collection=collection, mode=mode,
                                                                         k=10)], queries)


def warm(kb: KnowledgeBase, collection: str, claims: list[str]) -> None:
    """Bring the server's caches to a running server's state, untimed, with other claims than the timed ones: a
    server just started (or a collection just built) has read none of the collection's pages into its shared
    buffers, and the first leg timed would pay for every leg."""
    for mode in LEGS:
        for claim in claims:
            kb.search_hits(claim, collection=collection, mode=mode, k=10)


def encoding(kb: KnowledgeBase, queries: list[str]) -> dict:
    """The query encoder's share of the dense and hybrid legs: an HTTP round trip to the embeddings server."""
    return timings(kb.models.embeddings.for_space(DIMENSION).embed_query, queries)[0]


def long_questions(queries: list[str]) -> list[str]:
    """10+-term questions: two claims joined, as a RAG question with context reads."""
    return [f"{a} {b}" for a, b in zip(queries[::2], queries[1::2])]


def sizes(kb: KnowledgeBase) -> dict:
    """Bytes of every table and index of the store, and per chunk stored (all collections together)."""
    with kb.engine.connect() as conn:
        chunks = conn.execute(sa.text("SELECT coalesce(sum(chunk_count), 0) FROM collections")).scalar_one()
        rows = conn.execute(sa.text("""
            SELECT c.relname, c.relkind, pg_relation_size(c.oid) + coalesce(pg_relation_size(c.reltoastrelid), 0)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 3 DESC""")).all()
    total = sum(r[2] for r in rows)
    return {"relations": {name: size for name, _, size in rows if size > 1 << 20},
            "total_bytes": total, "bytes_per_chunk": round(total / max(chunks, 1))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--exact-queries", type=int, default=40,
                        help="queries for the whole-list (exact) baseline, which is slow at scale")
    parser.add_argument("--storage", choices=("vector", "halfvec"), default="vector")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse to resume (default: a new temp dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "eval" / "scale.json")
    args = parser.parse_args()
    console = Console()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="pgrag-scale-"))
    pool = sentence_pool()
    with (DATA / "scifact" / "queries.jsonl").open() as lines:
        claims = [json.loads(line)["text"] for line, _ in zip(lines, range(2 * args.queries))]
    queries, warm_up = claims[:args.queries], claims[args.queries:]
    server, url = start_embeddings_server()
    os.environ.update(OPENAI_BASE_URL=url, OPENAI_API_KEY="local-bench")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = f"{os.cpu_count()} cores"
    try:
        with KnowledgeBase.open(Settings(data_dir=data_dir, reranker="none", embedding_storage=args.storage), embeddings=SPEC) as kb:
            for size in (int(s) for s in args.sizes.split(",")):
                name = f"scale-{size // 1000}k" if size < 1_000_000 else f"scale-{size // 1_000_000}m"
                name += "" if args.storage == "vector" else f"-{args.storage}"
                ingest = build(kb, name, size, pool, console)
                if not ingest["written"] and name in results:  # already built: keep the rates measured then
                    ingest = results[name]["ingest"]
                entry = {"ingest": ingest}
                chunks = stored_chunks(kb, name)
                warm(kb, name, warm_up)
                for leg in LEGS:
                    entry[leg], found = latencies(kb, name, queries, leg)
                    if leg == "lexical":
                        bounded = found
                entry["query_encoding"] = encoding(kb, queries)
                entry["lexical_long_questions"], _ = latencies(kb, name, long_questions(queries), "lexical")
                bounded_settings = kb.retrieval.settings
                kb.retrieval.settings = bounded_settings.model_copy(update={"lexical_depth": 0})
                try:
                    few = queries[:args.exact_queries]
                    entry["lexical_exact"], exact = latencies(kb, name, few, "lexical")
                    entry["lexical_exact_long_questions"], _ = latencies(kb, name, long_questions(few), "lexical")
                finally:
                    kb.retrieval.settings = bounded_settings
                entry["lexical_overlap_at_10_with_exact"] = round(statistics.mean(
                    len(set(a) & set(b)) / max(len(b), 1) for a, b in zip(bounded, exact)), 4)
                entry["exact_queries"] = len(exact)
                entry["chunks"] = chunks
                entry["sizes"] = sizes(kb)
                results[name] = entry
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=1) + "\n")
                print_table(console, results)
    finally:
        server.terminate()
    console.print(f"Wrote {args.out} (database in {data_dir})")


def print_table(console: Console, results: dict) -> None:
    shown = (*LEGS, "query_encoding", "lexical_exact", "lexical_long_questions")
    table = Table("chunks", *[f"{leg} p50/p95 ms" for leg in shown],
                  "overlap@10", "ingest chunks/s (database side)", "bytes/chunk")
    for name, entry in results.items():
        if not isinstance(entry, dict) or "ingest" not in entry:
            continue
        table.add_row(f"{entry['chunks']:,}",
                      *[f"{entry[leg]['p50_ms']} / {entry[leg]['p95_ms']}" if leg in entry else "-"
                        for leg in shown],
                      str(entry["lexical_overlap_at_10_with_exact"]),
                      f"{entry['ingest'].get('chunks_per_second')} ({entry['ingest'].get('database_chunks_per_second', '-')})",
                      f"{entry['sizes']['bytes_per_chunk']:,}")
    console.print(table)


if __name__ == "__main__":
    main()
