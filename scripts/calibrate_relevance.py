"""Calibrate the retrieval health check (PGRAG_MIN_RELEVANCE) on a BEIR split.

    PGRAG_DATA_DIR=... .venv/bin/python scripts/calibrate_relevance.py ../shared/data/scifact [--miss-rates 0.01 0.05]

For every query it records the best dense (cosine) similarity among the top passages twice: as the knowledge base
is (the answer is there), and with the query's judged passages removed (the knowledge base does not hold the
answer). For each allowed miss rate, the threshold is the highest one that flags at most that share of the answerable
queries as weak; the script reports how many answerless cases it catches. Assumes the corpus is already ingested
(`pgrag eval` does that).
"""

from __future__ import annotations

import json
import statistics

from pgrag.evaluation.beir import load_from_arguments, script_arguments
from pgrag.kb import KnowledgeBase


def main() -> None:
    parser = script_arguments()
    parser.add_argument("--miss-rates", type=float, nargs="+", default=[0.01, 0.02, 0.05],
                        help="Largest shares of answerable queries the check may wrongly call weak.")
    args = parser.parse_args()
    dataset, collection = load_from_arguments(args)

    answerable: list[float] = []
    answerless: list[float] = []
    with KnowledgeBase.open(reranker="none", **dataset.chunking) as kb:
        depth = kb.settings.top_k + max(len(judged) for judged in dataset.qrels.values())
        for qid, text in dataset.queries.items():
            hits = kb.search_hits(text, collection=collection, mode="dense", k=depth)
            similarities = [(hit.source, hit.scores["dense_score"]) for hit in hits]
            answerable.append(max(s for _, s in similarities[: kb.settings.top_k]))
            answerless.append(max(s for source, s in similarities if source not in dataset.qrels[qid]))

    ordered = sorted(answerable)
    rows = []
    for miss_rate in args.miss_rates:
        threshold = round(ordered[int(len(ordered) * miss_rate)] - 0.005, 2)
        rows.append({
            "allowed miss rate": miss_rate, "threshold": threshold,
            "answerable flagged weak": round(sum(s < threshold for s in answerable) / len(answerable), 3),
            "answerless flagged weak": round(sum(s < threshold for s in answerless) / len(answerless), 3),
        })
    print(json.dumps({
        "queries": len(answerable),
        "answerable best similarity, median": round(statistics.median(answerable), 3),
        "answerless best similarity, median": round(statistics.median(answerless), 3),
        "thresholds": rows,
    }, indent=2))

if __name__ == "__main__":
    main()
