"""Compare fusion rules on every development dataset and choose the defaults by the worst case.

    PGRAG_DATA_DIR=... python scripts/tune_fusion.py [--only scifact,python-docs] [--out docs/eval/fusion.md]

Run scripts/eval_all.py first (it ingests each dataset into the collection used here). For each dataset, each
leg's top 100 chunks per query (id, source, score) come once from pgrag's own SQL; every candidate rule is then
scored offline with ranx, a page ranking at its best chunk as in `pgrag eval`:

- ``rrf k=K lex=W``: Σ w_leg / (K + rank_leg), what the SQL computes (dense weight 1);
- ``minmax dense=A`` / ``zscore dense=A``: A · dense + (1 − A) · lexical, each leg's scores min-max normalised
  (or as z-scores) over its candidates;
- ``adaptive rrf k=K alpha=A``: RRF with per-query leg weights from each leg's score distribution.

The figure per dataset is nDCG@10 (MRR@10 for the docs set, whose questions have one gold page), and a rule's
margin is its figure minus the better single leg's. The table lists every rule, best worst-case margin first.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

from ranx import Qrels, Run, evaluate

from eval_all import DATASETS, ROOT  # a sibling script: the same datasets and collections
from pgrag.evaluation.beir import load_beir
from pgrag.evaluation.runner import DEPTH
from pgrag.kb import KnowledgeBase

Leg = dict[str, list[tuple[int, str, float]]]  # query id → [(chunk id, doc id, score)], best first
Rule = Callable[[list[tuple[int, str, float]], list[tuple[int, str, float]]], dict[int, float]]


def rrf(k: float, lexical_weight: float) -> Rule:
    def fuse(dense, lexical):
        scores: dict[int, float] = {}
        for weight, leg in ((1.0, dense), (lexical_weight, lexical)):
            for rank, (chunk, _, _) in enumerate(leg, 1):
                scores[chunk] = scores.get(chunk, 0.0) + weight / (k + rank)
        return scores
    return fuse


def normalised(leg: list[tuple[int, str, float]], how: str) -> dict[int, float]:
    """A leg's scores on a common scale: min-max to [0, 1], or z-scores over its candidates."""
    values = [score for _, _, score in leg]
    if how == "minmax":
        low, span = min(values), (max(values) - min(values)) or 1.0
        return {chunk: (score - low) / span for chunk, _, score in leg}
    mean, sd = statistics.fmean(values), statistics.pstdev(values) or 1.0
    return {chunk: (score - mean) / sd for chunk, _, score in leg}


def score_sum(how: str, dense_weight: float) -> Rule:
    """A · dense + (1 − A) · lexical on normalised scores; a chunk one leg missed gets that leg's lowest."""
    def fuse(dense, lexical):
        legs = [(weight, normalised(leg, how)) for weight, leg in ((dense_weight, dense), (1 - dense_weight, lexical))
                if leg]
        lowest = [min(scores.values()) for _, scores in legs]
        chunks = set().union(*(scores for _, scores in legs))
        return {c: sum(w * scores.get(c, low) for (w, scores), low in zip(legs, lowest)) for c in chunks}
    return fuse


def adaptive_rrf(k: float, alpha: float, top: int = 10) -> Rule:
    """RRF whose leg weights follow each leg's confidence in this query: how far its best score stands above its
    ``top``-th, relative to the spread of its whole list (``alpha`` 0: plain RRF, 1: weights from that alone)."""
    def confidence(leg):
        if len(leg) <= top:
            return 1.0
        return (leg[0][2] - leg[top - 1][2]) / ((leg[0][2] - leg[-1][2]) or 1.0)

    def fuse(dense, lexical):
        cd, cl = confidence(dense), confidence(lexical)
        shares = (2 * cd / ((cd + cl) or 1.0), 2 * cl / ((cd + cl) or 1.0))
        scores: dict[int, float] = {}
        for share, leg in zip(shares, (dense, lexical)):
            for rank, (chunk, _, _) in enumerate(leg, 1):
                scores[chunk] = scores.get(chunk, 0.0) + (1 - alpha + alpha * share) / (k + rank)
        return scores
    return fuse


def rules() -> dict[str, Rule]:
    candidates = {f"rrf k={k} lex={w}": rrf(k, w) for k in (1, 2, 5, 10, 20, 60) for w in (0.5, 0.7, 0.85, 1.0, 1.2, 1.5)}
    for how in ("minmax", "zscore"):
        candidates |= {f"{how} dense={a}": score_sum(how, a) for a in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)}
    candidates |= {f"adaptive rrf k={k} alpha={a}": adaptive_rrf(k, a) for k in (5, 10) for a in (0.3, 0.6, 1.0)}
    return candidates


def page_run(ranked: dict[str, list[tuple[int, str]]]) -> dict[str, dict[str, float]]:
    """Chunks best first → documents at their best chunk, as ranx scores."""
    run = {}
    for qid, chunks in ranked.items():
        docs: dict[str, float] = {}
        for _, doc in chunks:
            docs.setdefault(doc, float(DEPTH - len(docs)))
        run[qid] = docs or {"__none__": 0.0}
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="Comma-separated dataset names.")
    parser.add_argument("--suffix", default="", help="Collection name suffix, as given to eval_all.py.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "eval" / "fusion.md")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(DATASETS)

    figures: dict[str, dict[str, float]] = {}  # rule → dataset → figure
    with KnowledgeBase.open(reranker="none") as kb:
        for name in names:
            folder, split = DATASETS[name]
            dataset = load_beir(folder, split)
            collection, metric = f"beir-{folder.name}{args.suffix}", "mrr@10" if dataset.files else "ndcg@10"
            legs: dict[str, Leg] = {"dense": {}, "lexical": {}}
            for qid, text in dataset.queries.items():
                for mode, leg in legs.items():
                    hits = kb.search_hits(text, collection=collection, mode=mode, k=DEPTH)
                    leg[qid] = [(h.chunk_id, dataset.doc_id(h.source), h.scores[f"{mode}_score"]) for h in hits]
            qrels = Qrels(dataset.qrels)

            def score(ranked: dict[str, list[tuple[int, str]]]) -> float:
                return round(float(evaluate(qrels, Run(page_run(ranked)), metric, make_comparable=True)), 4)

            for mode, leg in legs.items():
                figures.setdefault(f"{mode} alone", {})[name] = score(
                    {qid: [(c, d) for c, d, _ in hits] for qid, hits in leg.items()})
            for label, fuse in rules().items():
                ranked = {}
                for qid in dataset.queries:
                    docs = {c: d for c, d, _ in legs["dense"][qid] + legs["lexical"][qid]}
                    fused = fuse(legs["dense"][qid], legs["lexical"][qid])
                    ranked[qid] = [(c, docs[c]) for c in sorted(fused, key=lambda c: (-fused[c], c))]
                figures.setdefault(label, {})[name] = score(ranked)
            print(name, metric, {k: v[name] for k, v in figures.items() if "alone" in k}, flush=True)

    best_leg = {name: max(figures["dense alone"][name], figures["lexical alone"][name]) for name in names}
    margins = {rule: min(values[n] - best_leg[n] for n in names) for rule, values in figures.items()}
    chosen = sorted((r for r in figures if "alone" not in r), key=lambda r: -margins[r])
    shown = ["dense alone", "lexical alone", *chosen]
    lines = [f"| rule | {' | '.join(names)} | worst margin over the better leg |", "|---|" + "---|" * (len(names) + 1)]
    for rule in shown:
        lines.append(f"| {rule} | " + " | ".join(f"{figures[rule][n]:.4f}" for n in names)
                     + f" | {margins[rule]:+.4f} |")
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(figures, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
