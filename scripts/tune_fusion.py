"""Compare fusion rules on every development dataset and choose the defaults by the worst case.

    PGRAG_DATA_DIR=... python scripts/tune_fusion.py [--only scifact,python-docs] [--out docs/eval/fusion.md]

Run scripts/eval_all.py first (it ingests each dataset into the collection used here). For each dataset and
query, pgrag's own hybrid statement returns every candidate of either leg (each leg's top 100) once, with its
rank on each leg that found it and both its scores (cosine and BM25, each computed for every candidate); every
candidate rule is then scored offline with ranx, a page ranking at its best chunk as in `pgrag eval`:

- ``rrf k=K lex=W``: Σ w_leg / (K + rank_leg) (dense weight 1);
- ``minmax dense=A`` / ``zscore dense=A``: A · dense + (1 − A) · lexical, each leg's scores min-max normalised
  (or as z-scores) over its own candidates, a chunk the leg did not return counted at that leg's lowest;
- ``... complete``: the same with the chunk's own score on the leg that did not return it;
- ``... all candidates``: complete scores, each leg normalised over every candidate of both legs (what the SQL
  computes for ``PGRAG_FUSION=minmax``);
- ``adaptive rrf k=K alpha=A``: RRF with per-query leg weights from each leg's score distribution.

The figure per dataset is nDCG@10 (MRR@10 for the docs set, whose questions have one gold page), and a rule's
margin is its figure minus the better single leg's. The table lists every rule, best worst-case margin first.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ranx import Qrels, Run, evaluate

from eval_all import DATASETS, ROOT  # a sibling script: the same datasets and collections
from pgrag.db import spaces
from pgrag.db.search import search
from pgrag.evaluation.beir import load_beir
from pgrag.evaluation.runner import DEPTH
from pgrag.kb import KnowledgeBase


@dataclass(frozen=True)
class Candidate:
    chunk: int
    doc: str
    ranks: tuple[int | None, int | None]  # dense, lexical: None where that leg did not return the chunk
    scores: tuple[float, float]  # cosine, BM25 (0: no query term)


Rule = Callable[[list[Candidate]], dict[int, float]]


def leg(candidates: list[Candidate], i: int) -> list[Candidate]:
    """The candidates leg ``i`` returned, best first."""
    return sorted((c for c in candidates if c.ranks[i] is not None), key=lambda c: c.ranks[i])


def rrf(k: float, lexical_weight: float) -> Rule:
    def fuse(candidates):
        return {c.chunk: sum(w / (k + r) for w, r in zip((1.0, lexical_weight), c.ranks) if r is not None)
                for c in candidates}
    return fuse


def scaler(scores: list[float], how: str) -> Callable[[float], float]:
    """A leg's scores on a common scale: min-max to [0, 1], or z-scores, over its own candidates."""
    if how == "minmax":
        low, span = min(scores), (max(scores) - min(scores)) or 1.0
        return lambda score: (score - low) / span
    mean, sd = statistics.fmean(scores), statistics.pstdev(scores) or 1.0
    return lambda score: (score - mean) / sd


def score_sum(how: str, dense_weight: float, complete: bool, over_all: bool = False) -> Rule:
    """A · dense + (1 − A) · lexical on normalised scores; a chunk one leg missed gets its own score on that leg
    (``complete``) or that leg's lowest. The scale comes from the leg's own candidates, or from every candidate's
    score on that leg (``over_all``, complete scores)."""
    def fuse(candidates):
        total = dict.fromkeys((c.chunk for c in candidates), 0.0)
        for i, weight in enumerate((dense_weight, 1 - dense_weight)):
            returned = [c.scores[i] for c in leg(candidates, i)]
            if not returned:
                continue
            scale, lowest = scaler([c.scores[i] for c in candidates] if over_all else returned, how), min(returned)
            for c in candidates:
                total[c.chunk] += weight * scale(c.scores[i] if complete or c.ranks[i] is not None else lowest)
        return total
    return fuse


def adaptive_rrf(k: float, alpha: float, top: int = 10) -> Rule:
    """RRF whose leg weights follow each leg's confidence in this query: how far its best score stands above its
    ``top``-th, relative to the spread of its whole list (``alpha`` 0: plain RRF, 1: weights from that alone)."""
    def confidence(scores):
        if len(scores) <= top:
            return 1.0
        return (scores[0] - scores[top - 1]) / ((scores[0] - scores[-1]) or 1.0)

    def fuse(candidates):
        cd, cl = (confidence([c.scores[i] for c in leg(candidates, i)]) for i in (0, 1))
        shares = (2 * cd / ((cd + cl) or 1.0), 2 * cl / ((cd + cl) or 1.0))
        return {c.chunk: sum((1 - alpha + alpha * share) / (k + r) for share, r in zip(shares, c.ranks) if r is not None)
                for c in candidates}
    return fuse


def rules() -> dict[str, Rule]:
    candidates = {f"rrf k={k} lex={w}": rrf(k, w) for k in (1, 2, 5, 10, 20, 60) for w in (0.5, 0.7, 0.85, 1.0, 1.2, 1.5)}
    for how in ("minmax", "zscore"):
        for complete in (False, True):
            candidates |= {f"{how} dense={a}{' complete' if complete else ''}": score_sum(how, a, complete)
                           for a in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)}
        candidates |= {f"{how} dense={a} all candidates": score_sum(how, a, True, True)
                       for a in (0.3, 0.4, 0.5, 0.6, 0.7)}
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
            with kb.engine.connect() as conn:
                space = spaces.active_space_of(conn, collection)
            embed = kb.models.embeddings.for_space(space.dimension).embed_query
            # Each leg's top DEPTH, as `pgrag eval` fuses them, and every one of their candidates returned.
            params = replace(kb.retrieval.params("hybrid", 2 * DEPTH), candidates=DEPTH)
            pool: dict[str, list[Candidate]] = {}
            for qid, text in dataset.queries.items():
                with kb.engine.begin() as conn:
                    hits = search(conn, space, text, embed(text), params)
                pool[qid] = [Candidate(h.chunk_id, dataset.doc_id(h.source),
                                       (h.scores["dense_rank"], h.scores["lexical_rank"]),
                                       (h.scores["dense_score"], h.scores["lexical_score"] or 0.0)) for h in hits]
            qrels = Qrels(dataset.qrels)

            def score(ranked: dict[str, list[tuple[int, str]]]) -> float:
                return round(float(evaluate(qrels, Run(page_run(ranked)), metric, make_comparable=True)), 4)

            for i, mode in enumerate(("dense", "lexical")):
                figures.setdefault(f"{mode} alone", {})[name] = score(
                    {qid: [(c.chunk, c.doc) for c in leg(candidates, i)] for qid, candidates in pool.items()})
            for label, fuse in rules().items():
                ranked = {}
                for qid, candidates in pool.items():
                    fused = fuse(candidates)
                    ranked[qid] = [(c.chunk, c.doc) for c in sorted(candidates, key=lambda c: (-fused[c.chunk], c.chunk))]
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
