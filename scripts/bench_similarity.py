"""Near-duplicates and outliers over whole collections: pairs found per 1k chunks and the time of each scan.

    .venv/bin/python scripts/bench_similarity.py ../shared/data/scifact ../shared/data/nfcorpus \
        [--collections python-docs] [--out docs/eval/similarity.json]

Each BEIR folder is ingested as `pgrag eval` ingests it (once; a re-run reuses it); ``--collections`` adds
collections that are already there (e.g. the Python manual). Each scan is timed as `pgrag duplicates` and
`pgrag outliers` run it: one HNSW probe per chunk, in SQL.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pgrag.config import Settings
from pgrag.evaluation.beir import load_beir
from pgrag.kb import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.9, 0.95, 0.98)
ALL_PAIRS = 10**7  # no limit: every pair the scan finds is counted


def timed(function, *args, **kwargs) -> tuple[object, float]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, round(time.perf_counter() - started, 2)


def measure(kb: KnowledgeBase, collection: str) -> dict[str, object]:
    chunks = next(c["chunk_count"] for c in kb.collections() if c["name"] == collection)
    row: dict[str, object] = {"chunks": chunks}
    for threshold in THRESHOLDS:
        pairs, seconds = timed(kb.duplicates, collection=collection, threshold=threshold, limit=ALL_PAIRS)
        documents = {p["source_a"] for p in pairs} | {p["source_b"] for p in pairs}
        row[f"duplicates@{threshold}"] = {"pairs": len(pairs), "per_1k_chunks": round(1000 * len(pairs) / chunks, 2),
                                          "documents_involved": len(documents), "seconds": seconds}
    found, seconds = timed(kb.outliers, collection=collection, k=10)
    row["outliers"] = {"seconds": seconds, "top": [{"source": o["source"], "content": o["content"][:100],
                                                    "neighbour_similarity": round(o["neighbour_similarity"], 3)}
                                                   for o in found[:5]]}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", type=Path, nargs="*")
    parser.add_argument("--collections", default="", help="Comma-separated collections already ingested.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "eval" / "similarity.json")
    args = parser.parse_args()
    results: dict[str, object] = {}
    for folder in args.datasets:
        dataset = load_beir(folder)
        with KnowledgeBase(Settings(**dataset.chunking)) as kb:
            dataset.ingest(kb, dataset.collection)
            results[dataset.collection] = measure(kb, dataset.collection)
        print(dataset.collection, json.dumps(results[dataset.collection]), flush=True)
    with KnowledgeBase() as kb:
        for name in filter(None, args.collections.split(",")):
            results[name] = measure(kb, name)
            print(name, json.dumps(results[name]), flush=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("| collection | chunks | " + " | ".join(f"pairs per 1k chunks ≥ {t}" for t in THRESHOLDS)
          + " | duplicates scan (s) | outliers scan (s) |")
    for name, row in results.items():
        print(f"| {name} | {row['chunks']} | " + " | ".join(str(row[f'duplicates@{t}']['per_1k_chunks'])
                                                       for t in THRESHOLDS)
              + f" | {row['duplicates@0.95']['seconds']} | {row['outliers']['seconds']} |")


if __name__ == "__main__":
    main()
