"""Drop pgrag_or_query: the lexical leg reads postings (0005) and never called it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

import importlib

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS pgrag_or_query(text)")


def downgrade() -> None:
    # The same definition 0001 created (module names starting with a digit need importlib).
    op.execute(importlib.import_module("pgrag.migrations.versions.0001_initial").OR_QUERY)
