"""A bulk load builds its postings once, at its end, instead of row by row.

The statistics trigger of 0009 keeps postings and document frequencies exact on every write, and in a bulk load
that is 2/3 of a chunk's database write (random upserts across the posting blocks' B-tree and ``lexeme_stats``;
docs/scale.md). A collection now has ``postings_deferred``: while it is set, writes keep the collection's chunk
and token counts but leave postings and document frequencies alone, and ``pgrag_rebuild_postings`` recomputes
all of them from ``chunks.tsv`` in two sorted, set-based statements and clears the flag. A load that is killed
leaves the flag set, so the next ingest rebuilds; until then the lexical leg does not see the deferred chunks.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import importlib

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BLOCK_BITS = 12  # as in 0009

# 0009's bucket with the same values (checked on 10M postings and an 8.8M-point grid of tf, length and average)
# in float8 only: its numeric products (20 * tf * 1.9, 0.4 * length) cost a third of a rebuild. 38 * tf is
# exact, and (4 * length) / 10 is the double nearest to 0.4 * length, as numeric's cast to float8 gives.
IMPACT_BUCKET = """
CREATE OR REPLACE FUNCTION pgrag_impact_bucket(tf integer, chunk_tokens integer, avgdl real) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
  floor((38 * tf)::float8
        / (tf + 0.9::float8 * (0.6::float8 + (4 * chunk_tokens)::float8 / 10 / greatest(avgdl, 1)::float8)))::smallint
"""

# A source's postings, one row per (term, bucket, block); {source} is a table of chunks. Chunks of a collection
# whose postings are deferred have none until the rebuild.
BLOCKS_OF = f"""
SELECT s.id AS term_id, p.bucket, p.block, array_agg(p.id ORDER BY p.id) AS chunk_ids
FROM (SELECT n.collection_id, n.id, n.id >> {BLOCK_BITS} AS block, u.lexeme,
             pgrag_impact_bucket(coalesce(array_length(u.positions, 1), 1), n.token_count, c.impact_avgdl) AS bucket
      FROM {{source}} n JOIN collections c ON c.id = n.collection_id AND NOT c.postings_deferred,
           unnest(n.tsv) u) p
JOIN lexeme_stats s ON s.collection_id = p.collection_id AND s.lexeme = p.lexeme
GROUP BY 1, 2, 3"""

# Document frequencies of a source's terms, deferred collections left out.
TERMS_OF = """
SELECT n.collection_id, l.lexeme, count(*) AS n
FROM {source} n JOIN collections c ON c.id = n.collection_id AND NOT c.postings_deferred,
     unnest(tsvector_to_array(n.tsv)) AS l(lexeme)
GROUP BY 1, 2"""

BM25_STATS = f"""
CREATE OR REPLACE FUNCTION pgrag_maintain_bm25_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    -- Rows left empty go; the others lose the deleted ids. Both statements see the rows as they were.
    WITH gone AS ({BLOCKS_OF.format(source="old_chunks")}),
    emptied AS (
      DELETE FROM posting_blocks b USING gone g
      WHERE b.term_id = g.term_id AND b.bucket = g.bucket AND b.block = g.block AND b.chunk_ids <@ g.chunk_ids
    )
    UPDATE posting_blocks b SET chunk_ids = array(SELECT x FROM unnest(b.chunk_ids) x
                                                  WHERE x <> ALL (g.chunk_ids) ORDER BY x)
    FROM gone g
    WHERE b.term_id = g.term_id AND b.bucket = g.bucket AND b.block = g.block AND NOT b.chunk_ids <@ g.chunk_ids;
    UPDATE collections c SET chunk_count = c.chunk_count - d.n, token_count = c.token_count - d.t
    FROM (SELECT collection_id, count(*) AS n, sum(token_count) AS t FROM old_chunks GROUP BY 1) d
    WHERE c.id = d.collection_id;
    WITH gone AS ({TERMS_OF.format(source="old_chunks")})
    UPDATE lexeme_stats s SET doc_freq = s.doc_freq - gone.n FROM gone
    WHERE s.collection_id = gone.collection_id AND s.lexeme = gone.lexeme;
    DELETE FROM lexeme_stats WHERE doc_freq <= 0;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE collections c SET chunk_count = c.chunk_count + d.n, token_count = c.token_count + d.t,
                             impact_avgdl = coalesce(c.impact_avgdl, (c.token_count + d.t)::real
                                                                     / greatest(c.chunk_count + d.n, 1))
    FROM (SELECT collection_id, count(*) AS n, sum(token_count) AS t FROM new_chunks GROUP BY 1) d
    WHERE c.id = d.collection_id;
    -- Update known terms, insert new ones: no ON CONFLICT, which would draw an id for every known term too.
    WITH added AS ({TERMS_OF.format(source="new_chunks")}),
    known AS (
      UPDATE lexeme_stats s SET doc_freq = s.doc_freq + added.n FROM added
      WHERE s.collection_id = added.collection_id AND s.lexeme = added.lexeme
      RETURNING s.collection_id, s.lexeme
    )
    INSERT INTO lexeme_stats (collection_id, lexeme, doc_freq)
    SELECT a.collection_id, a.lexeme, a.n FROM added a
    WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.collection_id = a.collection_id AND k.lexeme = a.lexeme)
    ORDER BY 1, 2;
    -- A block already holding ids of an earlier write (its id range spans both) gets the new ones appended.
    INSERT INTO posting_blocks AS b (term_id, bucket, block, chunk_ids)
    {BLOCKS_OF.format(source="new_chunks")}
    ORDER BY 1, 2 DESC, 3
    ON CONFLICT (term_id, bucket, block) DO UPDATE SET chunk_ids = b.chunk_ids || excluded.chunk_ids;
  END IF;
  RETURN NULL;
END $$
"""

# Recomputes a collection's postings, document frequencies and totals from its chunks and clears the flag;
# the impact buckets are re-based on today's average length. The caller holds the collection's row lock.
REBUILD = f"""
CREATE OR REPLACE FUNCTION pgrag_rebuild_postings(target integer) RETURNS void LANGUAGE plpgsql
SET work_mem = '256MB'  -- the two sorts below are over every posting of the collection
AS $$
BEGIN
  DELETE FROM lexeme_stats WHERE collection_id = target;  -- and, by its trigger, the terms' blocks
  UPDATE collections c SET chunk_count = t.n, token_count = t.tokens,
                           impact_avgdl = CASE WHEN t.n > 0 THEN t.tokens::real / t.n END,
                           postings_deferred = false
  FROM (SELECT count(*) AS n, coalesce(sum(token_count), 0) AS tokens FROM chunks WHERE collection_id = target) t
  WHERE c.id = target;
  INSERT INTO lexeme_stats (collection_id, lexeme, doc_freq)
  SELECT target, l.lexeme, count(*) FROM chunks n, unnest(tsvector_to_array(n.tsv)) AS l(lexeme)
  WHERE n.collection_id = target GROUP BY 2 ORDER BY 2;
  INSERT INTO posting_blocks (term_id, bucket, block, chunk_ids)
  {BLOCKS_OF.format(source="(SELECT * FROM chunks WHERE collection_id = target)")}
  ORDER BY 1, 2 DESC, 3;
END $$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE collections ADD COLUMN postings_deferred boolean NOT NULL DEFAULT false")
    op.execute(IMPACT_BUCKET)
    op.execute(BM25_STATS)
    op.execute(REBUILD)


def downgrade() -> None:
    previous = importlib.import_module("pgrag.migrations.versions.0009_posting_blocks")
    op.execute("SELECT pgrag_rebuild_postings(id) FROM collections WHERE postings_deferred")
    op.execute("DROP FUNCTION pgrag_rebuild_postings(integer)")
    op.execute(previous.BM25_STATS)
    op.execute(previous.IMPACT_BUCKET)
    op.execute("ALTER TABLE collections DROP COLUMN postings_deferred")
