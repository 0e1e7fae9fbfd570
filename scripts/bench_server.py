"""Benchmark the HTTP API: /search/invoke under concurrent clients vs the retriever called in-process.

    .venv/bin/python scripts/bench_server.py --data-dir DIR [--collection bench-search] [--clients 10] [--seconds 30]

Run scripts/bench_ingest_search.py first with the same --data-dir: it builds the ≥10k-chunk collection.
Both sides run the same queries (SciFact claims) with reranking off, so the ratio is the cost of HTTP + LangServe.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from pgrag.config import Settings
from pgrag.evaluation.beir import load_beir
from pgrag.kb import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]


def summary(latencies_ms: list[float], errors: int, seconds: float) -> dict[str, float]:
    ordered = sorted(latencies_ms) or [0.0]
    return {"requests": len(latencies_ms), "errors": errors, "requests_per_s": round(len(latencies_ms) / seconds, 2),
            "p50_ms": round(statistics.median(ordered), 2), "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2)}


async def http_load(url: str, queries: list[str], collection: str, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    cycle = itertools.cycle(queries)
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                body = {"input": {"query": next(cycle), "collection": collection, "k": 10, "rerank": False}}
                started = time.perf_counter()
                try:
                    response = await http.post("/search/invoke", json=body)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return summary(latencies, errors, time.monotonic() - started)


def in_process_load(kb: KnowledgeBase, queries: list[str], collection: str, clients: int,
                    seconds: float) -> dict[str, float]:
    retriever = kb.retriever(collection=collection, k=10, rerank=False)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    cycle = itertools.cycle(queries)
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            with lock:
                query = next(cycle)
            started = time.perf_counter()
            try:
                retriever.invoke(query)
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
            except Exception:  # noqa: BLE001 - counted, as the HTTP side counts failed requests
                with lock:
                    errors += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summary(latencies, errors, time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    parser.add_argument("--collection", default="bench-search")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench_server.json")
    args = parser.parse_args()
    queries = list(load_beir(args.dataset).queries.values())
    env = {**os.environ, "PGRAG_DATA_DIR": str(args.data_dir), "PGRAG_RERANKER": "none"}

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "pgrag.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        asyncio.run(http_load(url, queries, args.collection, args.clients, 3))  # warm-up
        http = asyncio.run(http_load(url, queries, args.collection, args.clients, args.seconds))
        print("http /search/invoke", json.dumps(http), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    with KnowledgeBase(Settings(data_dir=args.data_dir, reranker="none")) as kb:
        in_process_load(kb, queries, args.collection, args.clients, 3)
        local = in_process_load(kb, queries, args.collection, args.clients, args.seconds)
    print("in-process retriever", json.dumps(local), flush=True)
    results = {"clients": args.clients, "seconds": args.seconds, "http": http, "in_process": local,
               "http_vs_in_process_rps": round(http["requests_per_s"] / local["requests_per_s"], 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
