"""pgrag_or_terms(text[]): OR a list of lexemes into a tsquery, for weighted and expanded lexical queries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(r"""
CREATE FUNCTION pgrag_or_terms(lexemes text[]) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
$$ SELECT string_agg('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery
   FROM unnest(lexemes) AS lexeme $$
""")


def downgrade() -> None:
    op.execute("DROP FUNCTION pgrag_or_terms(text[])")
