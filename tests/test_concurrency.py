"""Concurrent writers in one collection: overlapping ingests and a deleter all finish, with nothing lost, nothing
stored twice and exact statistics. The processes embed through one local OpenAI-compatible server, so that they
spend their time writing (each loading its own encoder would spread them out and take minutes on 2 cores)."""

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from langchain_core.documents import Document

from conftest import assert_statistics_exact, write_files
from corpus import DISTRACTORS
from pgrag.kb import KnowledgeBase
from test_openai_providers import OPENAI_SPEC, embeddings_url, openai_env  # noqa: F401 - fixtures

INGESTERS = 8
FILES = 24
WINDOW = 12  # files per ingester; neighbouring windows overlap by 9


def passage(i: int, version: str = "") -> str:
    sentences = [DISTRACTORS[(i + j) % len(DISTRACTORS)] for j in range(6)]
    return f"Document {i} {version}.\n\n" + "\n\n".join(sentences)


def test_overlapping_ingests_and_a_deleter_all_succeed(settings, collection, tmp_path, cli_env, embeddings_url,
                                                       openai_env):
    env = {**cli_env, "OPENAI_API_KEY": "local-test-key", "OPENAI_BASE_URL": embeddings_url,
           "PGRAG_EMBEDDINGS": OPENAI_SPEC}
    with KnowledgeBase.open(settings, embeddings=OPENAI_SPEC) as kb:
        run_writers(kb, collection, tmp_path, env)


def run_writers(kb: KnowledgeBase, collection: str, tmp_path: Path, env: dict[str, str]) -> None:
    folder = write_files(tmp_path / "shared", {f"doc{i:02d}.txt": passage(i) for i in range(FILES)})
    files = sorted(folder.iterdir())
    # Files already there that the run updates, and documents that the deleter removes meanwhile.
    kb.ingest(files[:6], collection=collection)
    for path in files[:6]:
        path.write_text(passage(int(path.stem[3:]), "revised"))
    doomed = [Document(passage(i, "doomed"), metadata={"source": f"doomed-{i}"}) for i in range(12)]
    kb.ingest_documents(doomed, collection=collection)

    # Small chunks and batches: each ingester commits several transactions that touch shared lexemes.
    env = {**env, "PGRAG_CHUNK_SIZE": "120", "PGRAG_CHUNK_OVERLAP": "0", "PGRAG_EMBED_BATCH_SIZE": "1"}
    ingesters = [
        subprocess.Popen([sys.executable, "-m", "pgrag.cli", "ingest", "-c", collection,
                          *[str(files[(start * 3 + j) % FILES]) for j in range(WINDOW)]],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for start in range(INGESTERS)
    ]
    deleter = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom pgrag.kb import KnowledgeBase\nwith KnowledgeBase.open() as kb:\n"
         "    for source in sys.argv[2:]: kb.delete(source, collection=sys.argv[1], missing_ok=False)",
         collection, *[doc.metadata["source"] for doc in doomed]],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = [proc.communicate(timeout=600)[0] for proc in [*ingesters, deleter]]
    failed = [(proc.args, out) for proc, out in zip([*ingesters, deleter], outputs) if proc.returncode != 0]
    assert not failed, failed
    assert not any("Traceback" in out or "Skipped" in out for out in outputs), outputs

    with kb.engine.connect() as conn:
        stored = conn.execute(sa.text(
            "SELECT d.source, d.content_hash, count(c.id) FROM documents d JOIN collections col "
            "ON col.id = d.collection_id JOIN chunks c ON c.document_id = d.id WHERE col.name = :c "
            "GROUP BY d.id"), {"c": collection}).all()
    assert sorted(Path(source).name for source, _, _ in stored) == [path.name for path in files]
    revised = kb.search_hits("Document 3 revised", collection=collection, mode="lexical", k=50)
    assert any("revised" in hit.content for hit in revised)
    assert not kb.search_hits("doomed", collection=collection, mode="lexical", k=50)
    assert_statistics_exact(kb, collection)
