"""Postings in blocks: one row per (term, impact bucket, range of chunk ids) holding an array of chunk ids.

0008 stored a row per posting with two B-tree entries each: 14.4 KB per chunk (heap, primary key, impact index)
and three random index inserts per posting. Here a term's postings are grouped by their BM25 impact, quantised
to ``1 / IMPACT_STEPS`` (the *bucket*), and by ``chunk_id >> BLOCK_BITS``: about 15 rows per chunk instead of
100, so the heap, its one index and the writes shrink several fold. Search still reads a term's best postings
first (buckets in descending order, index order) and stops after its depth; exact BM25 of the candidates is
computed from ``chunks.tsv``, which already holds every term frequency, so postings keep no ``tf``.

A posting's row is a pure function of the posting (term, tf, chunk length, chunk id) and of the collection's
``impact_avgdl``, the average length frozen at its first write, so a delete finds and edits exactly the rows
that hold its chunks. Impacts only order what search reads; scores use the current average length.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import importlib

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

IMPACT_STEPS = 20  # buckets per unit of BM25 term weight (which lies in (0, k1 + 1))
BLOCK_BITS = 12  # 4,096 consecutive chunk ids per row: measured in docs/scale.md

# The BM25 parameters impacts are computed with: pgrag's defaults.
IMPACT_BUCKET = f"""
CREATE OR REPLACE FUNCTION pgrag_impact_bucket(tf integer, chunk_tokens integer, avgdl real) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
  floor({IMPACT_STEPS} * tf * 1.9 / (tf + 0.9 * (0.6 + 0.4 * chunk_tokens / greatest(avgdl, 1)::float8)))::smallint
"""

# A source's postings, one row per (term, bucket, block); {source} is a table of chunks.
BLOCKS_OF = f"""
SELECT s.id AS term_id, p.bucket, p.block, array_agg(p.id ORDER BY p.id) AS chunk_ids
FROM (SELECT n.collection_id, n.id, n.id >> {BLOCK_BITS} AS block, u.lexeme,
             pgrag_impact_bucket(coalesce(array_length(u.positions, 1), 1), n.token_count, c.impact_avgdl) AS bucket
      FROM {{source}} n JOIN collections c ON c.id = n.collection_id, unnest(n.tsv) u) p
JOIN lexeme_stats s ON s.collection_id = p.collection_id AND s.lexeme = p.lexeme
GROUP BY 1, 2, 3"""

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
    WITH gone AS (
      SELECT o.collection_id, l.lexeme, count(*) AS n
      FROM old_chunks o, unnest(tsvector_to_array(o.tsv)) AS l(lexeme) GROUP BY 1, 2
    )
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
    WITH added AS (
      SELECT n.collection_id, l.lexeme, count(*) AS n
      FROM new_chunks n, unnest(tsvector_to_array(n.tsv)) AS l(lexeme) GROUP BY 1, 2
    ), known AS (
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

# Terms go when their last chunk does, or with their collection (whose cascade may remove them before the
# chunks trigger could see them): their blocks go with them.
TERMS_GONE = """
CREATE OR REPLACE FUNCTION pgrag_drop_term_blocks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM posting_blocks b USING old_terms o WHERE b.term_id = o.id;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE collections ADD COLUMN impact_avgdl real")
    op.execute("UPDATE collections SET impact_avgdl = token_count::real / chunk_count WHERE chunk_count > 0")
    op.execute("DROP TABLE chunk_postings")
    op.execute("""
        CREATE TABLE posting_blocks (
          term_id integer NOT NULL,   -- lexeme_stats.id
          bucket smallint NOT NULL,   -- pgrag_impact_bucket(tf, chunk length, collections.impact_avgdl)
          block integer NOT NULL,     -- chunk_id >> 12
          chunk_ids bigint[] NOT NULL -- ascending
        )""")
    op.execute(IMPACT_BUCKET)
    op.execute(f"INSERT INTO posting_blocks {BLOCKS_OF.format(source='chunks')}")
    op.execute("CREATE UNIQUE INDEX posting_blocks_key ON posting_blocks (term_id, bucket DESC, block)")
    op.execute(BM25_STATS)
    op.execute(TERMS_GONE)
    op.execute("CREATE TRIGGER lexeme_stats_drop_blocks AFTER DELETE ON lexeme_stats "
               "REFERENCING OLD TABLE AS old_terms FOR EACH STATEMENT EXECUTE FUNCTION pgrag_drop_term_blocks()")


def downgrade() -> None:
    previous = importlib.import_module("pgrag.migrations.versions.0008_impact_postings")
    op.execute("DROP TRIGGER lexeme_stats_drop_blocks ON lexeme_stats")
    op.execute("DROP FUNCTION pgrag_drop_term_blocks()")
    op.execute("DROP TABLE posting_blocks")
    op.execute("DROP FUNCTION pgrag_impact_bucket(integer, integer, real)")
    op.execute("ALTER TABLE collections DROP COLUMN impact_avgdl")
    op.execute("""
        CREATE TABLE chunk_postings (
          term_id integer NOT NULL, impact real NOT NULL, chunk_id bigint NOT NULL, tf integer NOT NULL)""")
    op.execute(previous.POSTINGS_OF.format(source="chunks"))
    op.execute("ALTER TABLE chunk_postings ADD CONSTRAINT chunk_postings_pkey PRIMARY KEY (chunk_id, term_id) "
               "INCLUDE (tf)")
    op.execute("CREATE INDEX chunk_postings_impact ON chunk_postings (term_id, impact DESC) INCLUDE (chunk_id)")
    op.execute(previous.BM25_STATS)
