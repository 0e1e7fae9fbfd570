"""Ingest one large text file and report the ingest process's peak memory and throughput (issue: bounded memory).

    python scripts/bench_large_file.py [--size-mb 50] [--embeddings hash|minilm] [--out docs/eval/large-file.json]

The file is made of real sentences (SciFact abstracts from ../shared/data, repeated with a paragraph number so
that chunks differ). Vectors come from scripts/openai_embeddings_server.py on 127.0.0.1 (``hash``: nearly free,
so the figure is pgrag's own cost; ``minilm``: the packaged encoder, as a user on 2 cores would see). The
database is a fresh embedded server in a temporary data dir. Peak RSS is the ingest process's own maximum
resident set (getrusage of the waited-for child), sampled by the kernel, not by polling.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"


def write_large_file(path: Path, size_mb: float) -> int:
    abstracts = [json.loads(line)["text"] for line in CORPUS.open()]
    target, written, number = int(size_mb * 1e6), 0, 0
    with path.open("w", encoding="utf-8") as out:
        while written < target:
            paragraph = f"Paragraph {number}. {abstracts[number % len(abstracts)]}\n\n"
            out.write(paragraph)
            written += len(paragraph.encode())
            number += 1
    return written


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_embeddings_server(vectors: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "openai_embeddings_server.py"), str(port)],
                            env={**os.environ, "VECTORS": vectors})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(f"{url}/docs", timeout=1)
            return proc, f"{url}/v1"
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the embeddings server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=50)
    parser.add_argument("--embeddings", choices=["hash", "minilm"], default="hash")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pgrag-large-") as scratch:
        scratch_dir = Path(scratch)
        scratch_dir.chmod(0o755)  # the embedded server's system user must enter it when run as root
        text = scratch_dir / "large.txt"
        size = write_large_file(text, args.size_mb)
        server, url = start_embeddings_server(args.embeddings)
        env = {**os.environ, "PGRAG_DATA_DIR": str(scratch_dir / "data"), "PGRAG_EMBEDDINGS": "openai:bench",
               "OPENAI_BASE_URL": url, "OPENAI_API_KEY": "local", "PGRAG_RERANKER": "none"}
        try:
            started = time.perf_counter()
            ingest = subprocess.run([sys.executable, "-m", "pgrag.cli", "ingest", str(text), "-c", "large"],
                                    env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        finally:
            server.terminate()
            server.wait()
        if ingest.returncode != 0:
            raise SystemExit(f"ingest failed:\n{ingest.stdout}\n{ingest.stderr}")
        chunks = int(ingest.stdout.split(" chunks in ")[0].rsplit(" ", 1)[1])

    result = {"file_mb": round(size / 1e6, 1), "embeddings": args.embeddings, "chunks": chunks,
              "seconds": round(seconds, 1), "chunks_per_s": round(chunks / seconds, 1),
              "mb_per_s": round(size / 1e6 / seconds, 3), "peak_rss_mb": round(peak_rss_mb)}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
