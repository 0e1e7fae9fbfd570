"""Impact-ordered postings: the lexical leg reads the top of each term's postings, not the whole list.

0005's postings were keyed (collection, lexeme, chunk), so a query read every posting of its terms: linear in the
corpus (50k postings and ~200 ms for a 6-term claim at 100k chunks). Now each posting carries its BM25 term
weight (the *impact*, computed with the collection's average length when written) and an index orders a term's
postings by it, so search reads a bounded number of the best postings per term (index-only) and then scores
its candidates exactly. Terms are numbered (``lexeme_stats.id``) so a posting is 20 bytes of data, not a
collection id and a word; postings are keyed by chunk, which keeps deletes and exact scoring to index probes and
appends new postings at the end of that index (written in its order). Writes stay in the statement trigger, once per statement: the
store writes a whole batch of documents in one statement.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

import importlib

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The BM25 parameters the impacts are computed with: pgrag's defaults. Impacts only order the postings read;
# scores are computed at query time with the search's own k1, b and the current average length.
IMPACT_K1, IMPACT_B = 0.9, 0.4

POSTINGS_OF = f"""
INSERT INTO chunk_postings (term_id, impact, chunk_id, tf)
SELECT s.id, p.tf * {IMPACT_K1 + 1} / (p.tf + {IMPACT_K1} * (1 - {IMPACT_B} + {IMPACT_B} * p.token_count
         / greatest(c.token_count::float8 / greatest(c.chunk_count, 1), 1))), p.id, p.tf
FROM (SELECT n.collection_id, n.id, n.token_count, u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf
      FROM {{source}} n, unnest(n.tsv) u) p
JOIN lexeme_stats s ON s.collection_id = p.collection_id AND s.lexeme = p.lexeme
JOIN collections c ON c.id = p.collection_id
ORDER BY 3, 1"""  # in key order of the primary key, where a batch's new chunk ids append at the right edge

BM25_STATS = f"""
CREATE OR REPLACE FUNCTION pgrag_maintain_bm25_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE collections c SET chunk_count = c.chunk_count - d.n, token_count = c.token_count - d.t
    FROM (SELECT collection_id, count(*) AS n, sum(token_count) AS t FROM old_chunks GROUP BY 1) d
    WHERE c.id = d.collection_id;
    WITH gone AS (
      SELECT o.collection_id, l.lexeme, count(*) AS n
      FROM old_chunks o, unnest(tsvector_to_array(o.tsv)) AS l(lexeme) GROUP BY 1, 2
    )
    UPDATE lexeme_stats s SET doc_freq = s.doc_freq - gone.n FROM gone
    WHERE s.collection_id = gone.collection_id AND s.lexeme = gone.lexeme;
    DELETE FROM chunk_postings p USING old_chunks o WHERE p.chunk_id = o.id;
    DELETE FROM lexeme_stats WHERE doc_freq <= 0;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE collections c SET chunk_count = c.chunk_count + d.n, token_count = c.token_count + d.t
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
    {POSTINGS_OF.format(source="new_chunks")};
  END IF;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE lexeme_stats ADD COLUMN id integer GENERATED ALWAYS AS IDENTITY")
    op.execute("ALTER TABLE lexeme_stats ADD CONSTRAINT lexeme_stats_id UNIQUE (id)")
    op.execute("DROP TABLE chunk_postings")
    op.execute("""
        CREATE TABLE chunk_postings (
          term_id integer NOT NULL,  -- lexeme_stats.id
          impact real NOT NULL,      -- BM25 term weight when written: orders the postings search reads
          chunk_id bigint NOT NULL,  -- chunks.id (kept by the trigger, as lexeme_stats is)
          tf integer NOT NULL        -- occurrences of the term in the chunk
        )""")
    op.execute(POSTINGS_OF.format(source="chunks"))  # indexes built after the bulk load: faster and compact
    op.execute("ALTER TABLE chunk_postings ADD CONSTRAINT chunk_postings_pkey PRIMARY KEY (chunk_id, term_id) "
               "INCLUDE (tf)")
    op.execute("CREATE INDEX chunk_postings_impact ON chunk_postings (term_id, impact DESC) INCLUDE (chunk_id)")
    op.execute(BM25_STATS)


def downgrade() -> None:
    previous = importlib.import_module("pgrag.migrations.versions.0005_postings")
    op.execute("DROP TABLE chunk_postings")
    op.execute("ALTER TABLE lexeme_stats DROP COLUMN id")
    op.execute("""
        CREATE TABLE chunk_postings (
          collection_id integer NOT NULL, lexeme text NOT NULL,
          chunk_id bigint NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
          tf integer NOT NULL, chunk_tokens integer NOT NULL,
          PRIMARY KEY (collection_id, lexeme, chunk_id))""")
    op.execute("CREATE INDEX chunk_postings_chunk ON chunk_postings (chunk_id)")
    op.execute("INSERT INTO chunk_postings (collection_id, lexeme, chunk_id, tf, chunk_tokens) "
               + previous.POSTINGS_OF.format(source="chunks"))
    op.execute(previous.BM25_STATS)
