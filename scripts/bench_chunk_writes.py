"""Where a chunk's database write goes: COPY synthetic chunks into a fresh collection in 1,024-chunk transactions
(ingest's batch), with every trigger and index, and with parts of the work taken away or added.

    .venv/bin/python scripts/bench_chunk_writes.py [--chunks 10000] [--rounds 2]

Variants, interleaved over the rounds, each on a new collection of the same embedded server (no vectors):

- ``as shipped``: the chunks table as the migrations leave it;
- ``bulk load``: as shipped, with the collection's postings deferred and rebuilt at the end (timed), as ingest
  does for a load that at least doubles a collection (migration 0011);
- ``parsing twice``: one more BEFORE trigger that parses the text again, as the token-count trigger did before
  migration 0010;
- ``no statistics triggers``: the statement trigger that keeps ``lexeme_stats``, ``posting_blocks`` and the
  totals disabled (what the inverted index costs).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import sqlalchemy as sa

from bench_scale import sentence_pool, synthetic_chunk  # a sibling script: the same synthetic text
from pgrag.config import Settings
from pgrag.kb import KnowledgeBase

BATCH = 1024
SECOND_PARSE = """
CREATE OR REPLACE FUNCTION bench_parse_again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.token_count := pgrag_token_count(to_tsvector('english', NEW.context || ' ' || NEW.content));
  RETURN NEW;
END $$"""
BULK_LOAD = "bulk load"
VARIANTS = {
    "as shipped": ([], []),
    BULK_LOAD: ([], []),
    "parsing twice": ([SECOND_PARSE, "CREATE TRIGGER zz_bench_parse_again BEFORE INSERT ON chunks "
                                     "FOR EACH ROW EXECUTE FUNCTION bench_parse_again()"],
                      ["DROP TRIGGER zz_bench_parse_again ON chunks"]),
    "no statistics triggers": (["ALTER TABLE chunks DISABLE TRIGGER chunks_bm25_stats_insert"],
                               ["ALTER TABLE chunks ENABLE TRIGGER chunks_bm25_stats_insert"]),
}


def write_chunks(engine: sa.Engine, name: str, texts: list[str], deferred: bool) -> float:
    """Seconds to COPY ``texts`` into a new collection ``name``, one transaction per batch; with ``deferred``,
    its postings are built after the last batch, and that counts."""
    with engine.begin() as conn:
        collection = conn.execute(sa.text("INSERT INTO collections (name, postings_deferred) VALUES (:n, :d) "
                                          "RETURNING id"), {"n": name, "d": deferred}).scalar_one()
    connection = engine.raw_connection()
    try:
        started = time.perf_counter()
        for first in range(0, len(texts), BATCH):
            cursor = connection.cursor()
            cursor.execute("INSERT INTO documents (collection_id, source, content_hash) VALUES (%s, %s, 'bench') "
                           "RETURNING id", (collection, f"{name}-{first}"))
            document = cursor.fetchone()[0]
            with cursor.copy("COPY chunks (document_id, collection_id, ordinal, content) FROM STDIN") as copy:
                for ordinal, text in enumerate(texts[first:first + BATCH]):
                    copy.write_row((document, collection, ordinal, text))
            connection.commit()
        if deferred:
            connection.cursor().execute("SELECT pgrag_rebuild_postings(%s)", (collection,))
            connection.commit()
        return time.perf_counter() - started
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    pool = sentence_pool()
    texts = [synthetic_chunk(i, pool) for i in range(args.chunks)]
    with tempfile.TemporaryDirectory() as data_dir, \
            KnowledgeBase.open(Settings(data_dir=data_dir, reranker="none")) as kb:
        for round_ in range(args.rounds):
            for label, (setup, teardown) in VARIANTS.items():
                with kb.engine.begin() as conn:
                    for statement in setup:
                        conn.execute(sa.text(statement))
                try:
                    seconds = write_chunks(kb.engine, f"bench-{round_}-{label}", texts, label == BULK_LOAD)
                finally:
                    with kb.engine.begin() as conn:
                        for statement in teardown:
                            conn.execute(sa.text(statement))
                print(f"round {round_ + 1}, {label}: {seconds * 1000 / len(texts):.2f} ms per chunk "
                      f"({len(texts) / seconds:,.0f} chunks/s)", flush=True)


if __name__ == "__main__":
    main()
