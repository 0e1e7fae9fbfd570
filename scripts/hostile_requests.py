"""Send a battery of hostile HTTP requests to a fresh `pgrag serve` and count those answered correctly.

    python scripts/hostile_requests.py [--out docs/eval/hostile-requests.json]

Correct means: a 4xx (never a 5xx, never a dropped connection) whose body is JSON with a ``detail`` reason, and a
server still healthy afterwards. The battery crosses every JSON route with malformed bodies and values (NaN,
infinities, NUL bytes, lone surrogates, non-UTF-8 bytes, deep nesting, wrong types, out-of-range numbers),
adds hostile uploads (path names, over-long names, oversize and chunked bodies), paths and headers. The server
runs on a temporary data dir with an API key and a 1 MB body limit; one good upload gives it a collection.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

KEY = "hostile-test-key"
LIMIT = 1_000_000
JSON_ROUTES = {"/search/invoke": "query", "/rag/invoke": "question", "/search/batch": "query",
               "/rag/stream": "question"}
BAD_VALUES = [b"NaN", b"-Infinity", b"1e400", b'"a\\u0000b"', b'"a\\ud800"', b"null", b"[]", b"{}", b"true",
              b"-1", b"0", b"99999999999999999999", b'"' + b"x" * 200_000 + b'"']
FIELDS = ["k", "collection", "mode", "filter", "rerank"]


def body(route: str, item: dict[str, bytes]) -> bytes:
    """A request body for ``route`` whose input has these fields, given as raw JSON values (NaN included)."""
    fields = b"{" + b", ".join(b'"' + key.encode() + b'": ' + value for key, value in item.items()) + b"}"
    return b'{"inputs": [' + fields + b"]}" if route.endswith("/batch") else b'{"input": ' + fields + b"}"


def battery() -> Iterator[tuple[str, str, dict]]:
    """(name, method, httpx request arguments) for every hostile request."""
    json_headers = {"Content-Type": "application/json"}
    for route, field in JSON_ROUTES.items():
        for name, raw in [("not json", b"{not json"), ("empty body", b""), ("\\xff byte", b'{"input": {"q": "\xff"}}'),
                          ("deep nesting", b'{"input": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
                          ("wrong shape", b"[1, 2, 3]"), ("missing input", b"{}")]:
            yield f"{route} {name}", "POST", {"url": route, "content": raw, "headers": json_headers}
        for value in BAD_VALUES:
            for item in [{field: value}, *({field: b'"otters"', other: value} for other in FIELDS)]:
                yield (f"{route} {list(item)[-1]}={value[:20]!r}", "POST",
                       {"url": route, "content": body(route, item), "headers": json_headers})
        nested = b'{"a": ' * 5000 + b"1" + b"}" * 5000
        yield (f"{route} filter nested 5000", "POST",
               {"url": route, "content": body(route, {field: b'"otters"', "filter": nested}), "headers": json_headers})
        yield (f"{route} chunked over limit", "POST",
               {"url": route, "content": iter([body(route, {field: b'"otters"'})[:-2]] + [b" " * 100_000] * 12),
                "headers": json_headers})
    upload = "/collections/hostile/documents"
    for name in ["../escape.txt", "..", "a/b.txt", "..\\win.txt", "n" * 300 + ".txt", ""]:
        yield f"upload name {name[:20]!r}", "POST", {"url": upload, "files": [("files", (name, b"text"))]}
    yield "upload over limit", "POST", {"url": upload, "files": [("files", ("big.txt", b"x" * (LIMIT + 1)))]}
    yield "upload no files", "POST", {"url": upload, "data": {"x": "y"}}
    yield "upload bad collection", "POST", {"url": "/collections/bad name!/documents",
                                            "files": [("files", ("a.txt", b"x"))]}
    yield "upload NUL collection", "POST", {"url": "/collections/a%00b/documents", "files": [("files", ("a.txt", b"x"))]}
    for source in ["a\x00b", "", "x" * 20_000]:
        yield f"delete source {source[:10]!r}", "DELETE", {"url": "/collections/hostile/documents",
                                                          "params": {"source": source}}
    yield "documents of NUL collection", "GET", {"url": "/collections/a%00b/documents"}
    yield "documents of unknown collection", "GET", {"url": "/collections/nope/documents"}
    yield "no API key", "GET", {"url": "/collections", "headers": {"X-API-Key": ""}}
    yield "non-ASCII API key", "GET", {"url": "/collections", "headers": {"X-API-Key": "ключ".encode()}}
    yield "wrong method", "PUT", {"url": "/search/invoke", "content": b"{}"}
    yield "unknown route", "GET", {"url": "/no/such/route"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def correct(response: httpx.Response) -> bool:
    try:
        return 400 <= response.status_code < 500 and bool(response.json().get("detail"))
    except (ValueError, AttributeError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pgrag-hostile-") as scratch:
        Path(scratch).chmod(0o755)
        port = free_port()
        env = {**os.environ, "PGRAG_DATA_DIR": scratch, "PGRAG_API_KEYS": KEY, "PGRAG_RERANKER": "none",
               "PGRAG_MAX_REQUEST_BYTES": str(LIMIT), "PGRAG_CHAT_MODEL": "llamacpp:qwen2.5-0.5b"}
        log_path = Path(scratch) / "server.log"
        server = subprocess.Popen([sys.executable, "-m", "pgrag.cli", "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=log_path.open("w"))
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=60) as client:
                for _ in range(600):
                    try:
                        client.get("/health")
                        break
                    except httpx.TransportError:
                        time.sleep(0.2)
                client.post("/collections/hostile/documents", files=[("files", ("otters.md", b"Otters use rocks."))])
                results = []
                for name, method, request in battery():
                    try:
                        response = client.request(method, **request)
                        results.append((name, response.status_code, correct(response), response.text[:120]))
                    except httpx.HTTPError as exc:
                        results.append((name, None, False, f"{type(exc).__name__}: {exc}"))
                healthy = client.get("/ready").status_code == 200
        finally:
            server.terminate()
            server.wait(timeout=60)
            log = log_path.read_text()
    wrong = [result for result in results if not result[2]]
    report = {"tried": len(results), "answered_correctly": len(results) - len(wrong), "healthy_after": healthy,
              "tracebacks_in_log": log.count("Traceback"), "wrong": wrong}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
