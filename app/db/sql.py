"""One SQL statement typed by a user (``pgrag db sql``), run as it is and returned as rows."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

from pgrag.errors import SqlError


def run_sql(engine: sa.Engine, statement: str, limit: int) -> tuple[list[str], list[tuple]]:
    """(column names, up to ``limit`` rows); no columns for a statement that returns none."""
    try:
        with engine.begin() as conn:
            # psycopg itself, without parameters, so '%' and ':' in the SQL are taken literally.
            cursor = conn.connection.driver_connection.execute(statement)
            columns = [column.name for column in cursor.description or []]
            return columns, cursor.fetchmany(limit) if columns else []
    except psycopg.Error as exc:
        raise SqlError(f"SQL error: {exc}") from None
