"""Run `pgrag eval` on every development dataset and write one table (issue: retrieval that generalizes).

    PGRAG_DATA_DIR=... python scripts/eval_all.py [--out docs/eval/all.md] [--only scifact,python-docs]
                                                  [--suffix -plain] [-- extra pgrag eval options]

Datasets: the BEIR folders in ../shared/data (SciFact train, NFCorpus dev, Cranfield, CISI) and the Python 3.11
manual QA set in docs/eval/python-docs (gold pages; needs Debian's python3.11-doc). Each run's JSON goes next to
the table; a dataset already ingested is not embedded again. ``--suffix`` names the collections apart (e.g. to
compare ingest settings such as PGRAG_CONTEXTUAL_CHUNKS=false in the same data dir).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DATASETS = {  # name: (folder, split)
    "scifact": (DATA / "scifact", "train"),
    "nfcorpus": (DATA / "nfcorpus", "dev"),
    "cranfield": (DATA / "cranfield", "test"),
    "cisi": (DATA / "cisi", "test"),
    "python-docs": (ROOT / "docs" / "eval" / "python-docs", "test"),
}
COLUMNS = ["ndcg@10", "mrr@10", "hit_rate@5", "recall@100"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "eval" / "all.md")
    parser.add_argument("--only", help="Comma-separated dataset names.")
    parser.add_argument("--suffix", default="", help="Appended to each collection name.")
    parser.add_argument("extra", nargs="*", help="Options passed to every `pgrag eval` (after --).")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(DATASETS)

    reports = {}
    for name in names:
        folder, split = DATASETS[name]
        out = args.out.with_name(f"{args.out.stem}-{name}.json")
        command = [sys.executable, "-m", "pgrag.cli", "eval", str(folder), "--split", split,
                   "--collection", f"beir-{folder.name}{args.suffix}", "--json", str(out), *args.extra]
        print("$", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)
        reports[name] = json.loads(out.read_text())

    lines = [f"| dataset | mode | {' | '.join(COLUMNS)} | queries/s |", "|---|---|" + "---|" * (len(COLUMNS) + 1)]
    for name, report in reports.items():
        for row in report["results"]:
            if row["metrics"]:
                values = " | ".join(f"{row['metrics'].get(c, float('nan')):.4f}" for c in COLUMNS)
                lines.append(f"| {name} ({report['split_queries']} q) | {row['name']} | {values} | "
                             f"{row['queries_per_second'] or '-'} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
