"""Every query in docs/sql.md runs against a real store, and `pgrag db sql` prints tables."""

import re
from pathlib import Path

import pytest
from langchain_core.documents import Document
from typer.testing import CliRunner

from pgrag.cli import app

QUERIES = re.findall(r"```sql\n(.*?)```", (Path(__file__).parents[1] / "docs" / "sql.md").read_text(), re.DOTALL)


@pytest.fixture(scope="module")
def stored(kb):
    kb.ingest_documents([Document("Vector search in Postgres with pgvector and HNSW.", metadata={"source": "v1"}),
                         Document("Full-text search ranks postgres documents with BM25.", metadata={"source": "v2"}),
                         Document("Vector search in Postgres with pgvector and HNSW.", metadata={"source": "v3"})],
                        collection="manual")


def test_docs_have_queries():
    assert len(QUERIES) >= 7


@pytest.mark.parametrize("query", QUERIES, ids=[f"query{i}" for i in range(len(QUERIES))])
def test_documented_query_runs_and_returns_rows(kb, stored, query):
    with kb.engine.connect() as conn:
        assert conn.exec_driver_sql(query).fetchall()


def test_db_sql_prints_a_table(stored, cli_env, monkeypatch):
    monkeypatch.setenv("PGRAG_DATA_DIR", cli_env["PGRAG_DATA_DIR"])
    result = CliRunner().invoke(app, ["db", "sql", "SELECT source, chunks FROM document_overview "
                                                   "WHERE collection = 'manual' AND source LIKE 'v%' ORDER BY 1"])
    assert result.exit_code == 0, result.output
    assert "v1" in result.stdout and "v2" in result.stdout
    bad = CliRunner().invoke(app, ["db", "sql", "SELECT * FROM no_such_table"])
    assert bad.exit_code == 1 and "no_such_table" in bad.stderr
