"""The postings rebuild never joins by nested loops.

A bulk load into a new collection beside a larger one ran 0011's rebuild for more than ten minutes on 10k chunks:
the planner's statistics predate the load, so it expects one chunk and one term for the new collection and joins
the load's 1M postings to its 42k terms by nested loops (42k × 10k chunks). The rebuild's two statements are
set operations over a whole collection, where hash and merge joins are right whatever the statistics say: with
nested loops off the same rebuild takes 6 s (docs/scale.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import importlib

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

previous = importlib.import_module("pgrag.migrations.versions.0011_deferred_postings")
WORK_MEM = "SET work_mem = '256MB'  -- the two sorts below are over every posting of the collection\n"
assert WORK_MEM in previous.REBUILD
REBUILD = previous.REBUILD.replace(
    WORK_MEM, WORK_MEM + "SET enable_nestloop = off  -- statistics taken before a bulk load expect one chunk\n")


def upgrade() -> None:
    op.execute(REBUILD)


def downgrade() -> None:
    op.execute(previous.REBUILD)
