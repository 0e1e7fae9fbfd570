"""Provider spec strings (``provider:model[?options]``) as data: what settings name, what the store records per
embedding space, and what the providers turn into models. Plain data, so the database layer can use it too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode

from pgrag.errors import InvalidInput

EMBEDDING_OPTIONS = ("dimensions", "query_prefix", "document_prefix")


class ProviderSpec(NamedTuple):
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_spec(spec: str) -> ProviderSpec:
    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise InvalidInput(f"Provider spec {spec!r} must look like 'provider:model', e.g. 'huggingface:/path/to/model'.")
    return ProviderSpec(provider.strip().lower(), model.strip())


@dataclass(frozen=True)
class EmbeddingSpec:
    provider: str
    model: str
    dimensions: int | None = None  # Matryoshka truncation; None keeps the model's native size
    query_prefix: str = ""
    document_prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> EmbeddingSpec:
        base, _, query = text.partition("?")
        provider, model = parse_spec(base)
        options = dict(parse_qsl(query, keep_blank_values=True))
        unknown = set(options) - set(EMBEDDING_OPTIONS)
        if unknown:
            raise InvalidInput(f"Unknown embedding option(s) {', '.join(sorted(unknown))} in {text!r}; "
                               f"known: {', '.join(EMBEDDING_OPTIONS)}.")
        dimensions = options.get("dimensions")
        if dimensions is not None and (not dimensions.isdigit() or int(dimensions) < 1):
            raise InvalidInput(f"dimensions must be a positive integer, not {dimensions!r}")
        return cls(provider, model, int(dimensions) if dimensions else None,
                   options.get("query_prefix", ""), options.get("document_prefix", ""))

    def __str__(self) -> str:
        options = {"dimensions": self.dimensions, "query_prefix": self.query_prefix,
                   "document_prefix": self.document_prefix}
        query = urlencode({key: value for key, value in options.items() if value}, safe=": /")
        return f"{self.provider}:{self.model}" + (f"?{query}" if query else "")
