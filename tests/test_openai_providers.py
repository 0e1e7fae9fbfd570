"""The OpenAI provider path against real servers on 127.0.0.1: llama_cpp.server serving the packaged SmolLM2
GGUF for chat, and an OpenAI-compatible embeddings server backed by the packaged MiniLM."""

import subprocess
from contextlib import contextmanager
import sys
import time
from pathlib import Path

import httpx
import pytest
from langchain_core.documents import Document

from pgrag.kb import KnowledgeBase
from pgrag.providers.gguf import gguf_path
from pgrag.errors import EmbeddingProviderError
from test_server import free_port

TESTS = Path(__file__).parent
OPENAI_SPEC = "openai:all-MiniLM-L6-v2"


def serve(command: list[str], env: dict[str, str], health: str) -> subprocess.Popen:
    proc = subprocess.Popen(command, env=env, cwd=TESTS.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(health, timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{command} did not start")


@contextmanager
def embeddings_server(env: dict[str, str]):
    """The MiniLM-backed OpenAI-compatible embeddings server; yields its base URL."""
    port = free_port()
    proc = serve([sys.executable, str(TESTS.parent / "scripts" / "openai_embeddings_server.py"), str(port)], env,
                 f"http://127.0.0.1:{port}/docs")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def embeddings_url(cli_env):
    with embeddings_server(cli_env) as url:
        yield url


@pytest.fixture(scope="module")
def chat_url(cli_env):
    port = free_port()
    proc = serve([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path("smollm2", Path())), "--host", "127.0.0.1",
                  "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"], cli_env,
                 f"http://127.0.0.1:{port}/v1/models")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def openai_env(monkeypatch, embeddings_url):
    monkeypatch.setenv("OPENAI_API_KEY", "local-test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", embeddings_url)


def test_openai_embeddings_ingest_and_search(settings, collection, openai_env):
    with KnowledgeBase.open(settings, embeddings=OPENAI_SPEC) as kb:
        kb.ingest_documents([Document("Sea otters crack shellfish with rocks.", metadata={"source": "otters"}),
                             Document("Glaciers carve valleys.", metadata={"source": "ice"})], collection=collection)
        hits = kb.search_hits("which animal uses tools", collection=collection, mode="dense", k=1)
        assert hits[0].source == "otters"
        assert kb.search_hits("x", collection=collection, mode="dense")[0].scores["dense_score"] is not None


def test_rate_limits_are_retried(settings, collection, openai_env, cli_env, monkeypatch):
    with embeddings_server({**cli_env, "FAIL_FIRST": "2"}) as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        with KnowledgeBase.open(settings, embeddings=OPENAI_SPEC) as kb:
            report = kb.ingest_documents([Document("retry me", metadata={"source": "r"})], collection=collection)
            assert report.added == ["r"]


def test_provider_down_or_wrong_dimension_is_a_clear_error_and_writes_nothing(settings, collection, openai_env,
                                                                                cli_env, monkeypatch):
    with KnowledgeBase.open(settings, embeddings=OPENAI_SPEC) as kb:
        kb.ingest_documents([Document("first", metadata={"source": "a"})], collection=collection)

    with embeddings_server({**cli_env, "WRONG_DIMENSION": "1"}) as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        with KnowledgeBase.open(settings, embeddings=OPENAI_SPEC) as kb:
            with pytest.raises(EmbeddingProviderError, match="383 dimensions"):
                kb.ingest_documents([Document("second", metadata={"source": "b"})], collection=collection)
            assert [d["source"] for d in kb.documents(collection=collection)] == ["a"]

    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    with KnowledgeBase.open(settings, embeddings=OPENAI_SPEC, provider_retries=1) as kb:
        with pytest.raises(EmbeddingProviderError, match="Nothing of this batch was written"):
            kb.ingest_documents([Document("third", metadata={"source": "c"})], collection=collection)
        assert [d["source"] for d in kb.documents(collection=collection)] == ["a"]


def test_chat_model_swaps_between_llamacpp_and_openai_compatible(kb, settings, chat_url, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "local-test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", chat_url)
    kb.ingest_documents([Document("The museum opens at nine on weekdays.", metadata={"source": "museum"})],
                        collection="chat-swap")
    with KnowledgeBase.open(settings, chat_model="openai:smollm2") as remote:
        answer = remote.ask("When does the museum open?", collection="chat-swap", k=1)
    assert answer.answer.strip() and answer.sources[0].metadata["source"] == "museum"
    local = kb.ask("When does the museum open?", collection="chat-swap", k=1)
    assert local.citations and local.citations[0]["source"] == "museum"
