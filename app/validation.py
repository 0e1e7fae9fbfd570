"""Checks on user text before it reaches the database: PostgreSQL cannot store a NUL character, psycopg cannot
encode a lone surrogate, and jsonb has no NaN or infinity, so each would otherwise surface as a server fault."""

from __future__ import annotations

import math
from typing import Any

from pgrag.errors import InvalidInput

MAX_FILTER_DEPTH = 32


def text(value: str, what: str) -> str:
    if "\x00" in value:
        raise InvalidInput(f"The {what} contains a NUL character, which cannot be stored or searched; remove it.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"The {what} is not valid Unicode (it has a lone surrogate); send UTF-8 text.") from None
    return value


def metadata_filter(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A metadata filter whose strings and numbers jsonb can hold, nested at most ``MAX_FILTER_DEPTH`` deep;
    checked without recursion, so a hostile nesting cannot exhaust the stack."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_FILTER_DEPTH:
            raise InvalidInput(f"The filter is nested deeper than {MAX_FILTER_DEPTH} levels.")
        if isinstance(item, dict):
            pending.extend((key, depth + 1) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            text(item, "filter")
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"The filter has the number {item}, which JSON cannot hold; use a finite number.")
    return value
