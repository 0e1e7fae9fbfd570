"""The HTTP API on a real uvicorn process on 127.0.0.1, through httpx and LangServe's RemoteRunnable."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from langserve import RemoteRunnable

from conftest import fresh_dir
from test_cli import postgres_running

KEY = "test-key-123"
HEADERS = {"X-API-Key": KEY}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pgrag.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start")


@pytest.fixture(scope="module")
def server(cli_env):
    env = {**cli_env, "PGRAG_API_KEYS": KEY, "PGRAG_MAX_REQUEST_BYTES": str(200_000)}
    proc, url = start_server(env)
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, headers=HEADERS, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def ingested(client):
    files = [("files", ("otters.md", b"# Otters\n\nSea otters use rocks to crack open shellfish.\n", "text/markdown")),
             ("files", ("broken.pdf", b"%PDF-1.4 not a pdf", "application/pdf"))]
    response = client.post("/collections/http-test/documents", files=files)
    assert response.status_code == 200, response.text
    return response.json()


def test_health_is_open_everything_else_needs_a_key(server):
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    for method, path in (("GET", "/collections"), ("POST", "/search/invoke"), ("POST", "/rag/invoke")):
        response = httpx.request(method, f"{server}{path}", json={})
        assert response.status_code == 401 and "API key" in response.json()["detail"]
    wrong = httpx.get(f"{server}/collections", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    non_ascii = httpx.get(f"{server}/collections", headers={"X-API-Key": "ключ".encode()})
    assert non_ascii.status_code == 401
    assert httpx.get(f"{server}/ready", headers=HEADERS).json() == {"status": "ready"}


def test_upload_then_search_finds_it(client, ingested):
    assert [name.rsplit("/", 1)[-1] for name in ingested["added"]] == ["otters.md"]
    assert ingested["failed"][0]["file"] == "broken.pdf" and "PDF" in ingested["failed"][0]["reason"]
    response = client.post("/search/invoke", json={"input": {"query": "which animal uses tools to eat shellfish",
                                                             "collection": "http-test", "k": 1}})
    assert response.status_code == 200, response.text
    hit = response.json()["output"][0]
    assert hit["source"].endswith("otters.md") and "rocks" in hit["content"] and "fused" in hit["scores"]
    names = [c["name"] for c in client.get("/collections").json()]
    assert "http-test" in names


def test_remote_runnable_invoke_batch_stream(server, ingested):
    rag = RemoteRunnable(f"{server}/rag", headers=HEADERS, timeout=300)
    question = {"question": "What do sea otters crack open?", "collection": "http-test", "k": 1}
    result = rag.invoke(question)
    assert result["citations"] and result["citations"][0]["source"].endswith("otters.md")
    # The fields of `pgrag ask --json`: sources as plain objects with scores, grounding flags, timings.
    assert result["sources"][0]["source"].endswith("otters.md") and "dense_score" in result["sources"][0]["scores"]
    assert result["grounded"] and not result["abstained"] and result["timings"]["total_s"] > 0
    assert result["timings"]["tokens"] > 1
    assert len(rag.batch([question, question])) == 2
    pieces = [chunk["answer"] for chunk in rag.stream(question) if "answer" in chunk]
    assert len(pieces) > 2
    search = RemoteRunnable(f"{server}/search", headers=HEADERS)
    assert search.invoke({"query": "otters", "collection": "http-test"})[0]["source"].endswith("otters.md")


def test_similar_duplicates_outliers_routes(client, ingested):
    source = ingested["added"][0]
    assert client.get("/collections/http-test/similar", params={"source": source}).status_code == 200
    assert client.get("/collections/http-test/similar").status_code == 400
    assert isinstance(client.get("/collections/http-test/duplicates", params={"threshold": 0.9}).json(), list)
    outliers = client.get("/collections/http-test/outliers", params={"k": 1})
    assert outliers.status_code == 200 and isinstance(outliers.json(), list)
    assert client.get("/collections/http-test/outliers", params={"k": 0}).status_code == 422


def test_delete_document(client, ingested):
    source = ingested["added"][0]
    assert client.delete("/collections/http-test/documents", params={"source": source}).status_code == 200
    missing = client.delete("/collections/http-test/documents", params={"source": source})
    assert missing.status_code == 404 and "No document" in missing.json()["detail"]
    client.post("/collections/http-test/documents",
                files=[("files", ("otters.md", b"# Otters\n\nSea otters use rocks to crack open shellfish.\n"))])


def test_bad_requests_get_4xx_with_a_reason(client):
    big = client.post("/collections/http-test/documents", files=[("files", ("big.txt", b"x" * 300_000))])
    assert big.status_code == 413 and "larger than" in big.json()["detail"]

    malformed = client.post("/search/invoke", content=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 422 and "Traceback" not in malformed.text

    invalid = client.post("/search/invoke", json={"input": {"query": "", "k": 0}})
    assert invalid.status_code == 422 and "Traceback" not in invalid.text

    for name in ("../escape.txt", "..", "a/b.txt", "..\\win.txt"):
        response = client.post("/collections/http-test/documents", files=[("files", (name, b"text"))])
        assert response.status_code == 400 and "file name" in response.json()["detail"], name

    hostile = [
        b'{"input": {"query": "otters", "k": NaN}}',  # the 422 must not choke on echoing NaN back
        b'{"input": {"query": "otters\\u0000"}}', b'{"input": {"query": "a\\ud800"}}',
        b'{"input": {"query": "otters", "filter": {"a": NaN}}}', b'{"input": {"query": "otters", "filter": {"a": 1e400}}}',
        b'{"input": {"query": "otters", "filter": {"a": "\\u0000"}}}', b'{"input": {"query": "otters", "collection": "a\\u0000"}}',
        b'{"input": {"query": "\xff"}}', b'{"input": {"query": "otters", "filter": ' + b'{"a": ' * 5000 + b'1' + b'}' * 5000 + b'}}',
    ]
    for body in hostile:
        response = client.post("/search/invoke", content=body, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500 and response.json()["detail"], (body[:60], response.text[:200])
    nul_delete = client.delete("/collections/http-test/documents", params={"source": "a\x00b"})
    assert nul_delete.status_code == 400

    batch = client.post("/search/batch", json={"inputs": [{"query": "otters", "k": 0}]})
    assert batch.status_code == 422, batch.text

    for streamed in ({"question": "a\x00b", "collection": "http-test"}, {"question": "otters", "collection": "nope"}):
        response = client.post("/rag/stream", json={"input": streamed})  # refused before the stream begins
        assert 400 <= response.status_code < 500 and response.json()["detail"], response.text

    unknown = client.post("/search/invoke", json={"input": {"query": "x", "collection": "no-such-collection"}})
    assert unknown.status_code == 404 and "No collection" in unknown.json()["detail"]
    assert client.post("/collections/bad name!/documents",
                       files=[("files", ("a.txt", b"x"))]).status_code == 400


def test_chunked_bodies_over_the_limit_get_413(client):
    def chunks(total: int, prefix: bytes = b""):
        yield prefix
        for _ in range(total // 10_000):
            yield b" " * 10_000

    json_body = client.post("/search/invoke", content=chunks(300_000, b'{"input": {"query": "otters"'),
                            headers={"Content-Type": "application/json"})
    assert json_body.status_code == 413 and "larger than" in json_body.json()["detail"]
    boundary = b"pgrag-test-boundary"
    head = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n")
    upload = client.post("/collections/http-test/documents", content=chunks(300_000, head),
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"})
    assert upload.status_code == 413 and "larger than" in upload.json()["detail"]


def test_rejected_uploads_leave_no_files_and_no_collection(client, cli_env):
    long_name = "n" * 300 + ".txt"
    response = client.post("/collections/http-test/documents", files=[("files", (long_name, b"text"))])
    assert response.status_code == 400 and "file name" in response.json()["detail"]

    files = [("files", ("empty.txt", b"  ")), ("files", ("binary.txt", b"\x00\x01\x02"))]
    response = client.post("/collections/all-rejected/documents", files=files)
    assert response.status_code == 200 and len(response.json()["failed"]) == 2
    assert "all-rejected" not in [c["name"] for c in client.get("/collections").json()]
    uploads = Path(cli_env["PGRAG_DATA_DIR"]) / "uploads"
    assert not list((uploads / "all-rejected").glob("*"))
    assert not list((uploads / "http-test").glob("*.pdf"))  # the broken PDF of the `ingested` fixture


def test_embedded_server_does_not_outlive_uvicorn(cli_env):
    data_dir = fresh_dir("pgrag-serve-")
    proc, _ = start_server({**cli_env, "PGRAG_DATA_DIR": str(data_dir)})
    assert postgres_running(data_dir / "pgdata")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while postgres_running(data_dir / "pgdata") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not postgres_running(data_dir / "pgdata")
