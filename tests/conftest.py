"""Shared fixtures: one real PostgreSQL + pgvector (embedded, or DATABASE_URL) and one set of models per session."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest


from pgrag.config import Settings
from pgrag.kb import KnowledgeBase


def fresh_dir(prefix: str) -> Path:
    """A temp folder the embedded server's system user may enter (mkdtemp makes it 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = fresh_dir("pgrag-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, reranker="none")


@pytest.fixture(scope="session")
def kb(settings: Settings) -> KnowledgeBase:
    with KnowledgeBase(settings) as knowledge_base:
        yield knowledge_base


@pytest.fixture
def collection() -> str:
    """A collection of its own per test, so tests never see each other's documents (also on DATABASE_URL)."""
    return f"test_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def cli_env(data_dir: Path) -> dict[str, str]:
    """Environment for `pgrag` subprocesses: the same database and data dir as the session."""
    return {**os.environ, "PGRAG_DATA_DIR": str(data_dir), "PGRAG_RERANKER": "none", "PYTHONUNBUFFERED": "1"}


def write_files(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with real text, built by hand because no test dependency writes PDFs."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def assert_statistics_exact(kb: KnowledgeBase, collection: str) -> None:
    """The trigger-maintained BM25 statistics and postings equal a recomputation from the chunks."""
    import sqlalchemy as sa

    by_name = {"c": collection}
    with kb.engine.connect() as conn:
        kept = dict(conn.execute(sa.text(
            "SELECT s.lexeme, s.doc_freq FROM lexeme_stats s JOIN collections c ON c.id = s.collection_id "
            "WHERE c.name = :c"), by_name).all())
        recomputed = dict(conn.execute(sa.text(
            "SELECT l, count(*) FROM chunks ch JOIN collections c ON c.id = ch.collection_id, "
            "unnest(tsvector_to_array(ch.tsv)) l WHERE c.name = :c GROUP BY l"), by_name).all())
        postings = conn.execute(sa.text(
            "SELECT s.lexeme, x.id, b.bucket, b.block FROM posting_blocks b JOIN lexeme_stats s ON s.id = b.term_id "
            "JOIN collections c ON c.id = s.collection_id, unnest(b.chunk_ids) x(id) WHERE c.name = :c "
            "ORDER BY 1, 2"), by_name).all()
        recomputed_postings = conn.execute(sa.text(
            "SELECT u.lexeme, ch.id, pgrag_impact_bucket(coalesce(array_length(u.positions, 1), 1), ch.token_count, "
            "c.impact_avgdl), ch.id >> 12 FROM chunks ch JOIN collections c ON c.id = ch.collection_id, "
            "unnest(ch.tsv) u WHERE c.name = :c ORDER BY 1, 2"), by_name).all()
        orphans = conn.execute(sa.text(
            "SELECT count(*) FROM posting_blocks b, unnest(b.chunk_ids) x(id) "
            "WHERE NOT EXISTS (SELECT FROM chunks ch WHERE ch.id = x.id) "
            "OR NOT EXISTS (SELECT FROM lexeme_stats s WHERE s.id = b.term_id) OR cardinality(b.chunk_ids) = 0"
        )).scalar_one()
        totals = conn.execute(sa.text(
            "SELECT c.chunk_count, c.token_count, count(ch.id), coalesce(sum(ch.token_count), 0) FROM collections c "
            "LEFT JOIN chunks ch ON ch.collection_id = c.id WHERE c.name = :c GROUP BY c.id"), by_name).one()
    assert kept == recomputed
    assert postings == recomputed_postings and orphans == 0
    assert totals[0] == totals[2] and totals[1] == totals[3]
