"""Choose the fusion defaults (RRF k and per-leg weights) from measurements on a BEIR split.

    PGRAG_DATA_DIR=... .venv/bin/python scripts/tune_fusion.py ../shared/data/scifact [--queries FILE]

Fetches each leg's top 100 from pgrag once per query, then scores weighted RRF, Σ w_leg / (k + rank_leg) — the
formula the SQL uses — over a grid with ranx. Run `pgrag eval` with the chosen values to confirm them on the
real SQL path. Assumes the corpus is already ingested (`pgrag eval` does that).
"""

from __future__ import annotations

import itertools
import json

from ranx import Qrels, Run, evaluate

from pgrag.evaluation.beir import load_from_arguments, script_arguments
from pgrag.evaluation.runner import DEPTH
from pgrag.kb import KnowledgeBase


def main() -> None:
    parser = script_arguments()
    args = parser.parse_args()
    dataset, collection = load_from_arguments(args)

    legs: dict[str, dict[str, list[str]]] = {"dense": {}, "lexical": {}}
    with KnowledgeBase.open(reranker="none", **dataset.chunking) as kb:
        for qid, text in dataset.queries.items():
            for leg in legs:
                legs[leg][qid] = [dataset.doc_id(h.source)
                                  for h in kb.search_hits(text, collection=collection, mode=leg, k=DEPTH)]

    qrels = Qrels(dataset.qrels)
    results = []
    for rrf_k, lexical_weight in itertools.product([2, 5, 10, 20, 30, 40, 60, 100], [0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0]):
        run: dict[str, dict[str, float]] = {}
        for qid in dataset.queries:
            scores: dict[str, float] = {}
            for leg, weight in (("dense", 1.0), ("lexical", lexical_weight)):
                for rank, doc in enumerate(legs[leg][qid], 1):
                    scores[doc] = scores.get(doc, 0.0) + weight / (rrf_k + rank)
            run[qid] = dict(sorted(scores.items(), key=lambda item: -item[1])[:DEPTH]) or {"__none__": 0.0}
        metrics = evaluate(qrels, Run(run), ["ndcg@10", "recall@100"], make_comparable=True)
        results.append({"rrf_k": rrf_k, "dense_weight": 1.0, "lexical_weight": lexical_weight,
                        **{m: round(float(v), 4) for m, v in metrics.items()}})
    results.sort(key=lambda r: -r["ndcg@10"])
    for row in results[:10]:
        print(json.dumps(row))
    by_default = next(r for r in results if r["rrf_k"] == 60 and r["lexical_weight"] == 1.0)
    print("k=60, weights 1/1:", json.dumps(by_default))


if __name__ == "__main__":
    main()
