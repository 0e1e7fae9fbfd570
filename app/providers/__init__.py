"""Spec strings → LangChain objects, one module per kind of model (embeddings, chat, reranker), and ``Models``:
the set one knowledge base uses, each loaded on first use and then kept."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING

from pgrag.config import Settings
from pgrag.specs import EmbeddingSpec

if TYPE_CHECKING:
    from langchain_community.cross_encoders import BaseCrossEncoder
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

    from pgrag.providers.embeddings import SpaceEmbeddings


def configure_model_libraries(allow_downloads: bool) -> None:
    """Keep model libraries off the network unless allowed, and quiet; must run before they are imported."""
    if not allow_downloads:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class Models:
    """The models of one knowledge base, loaded lazily and once. ``embeddings`` may be any LangChain
    ``Embeddings`` object instead of the configured provider (the VectorStore takes one): its space is then
    recorded as ``langchain:<module.Class>``, so the model guard still tells it apart from others."""

    def __init__(self, settings: Settings, embeddings: Embeddings | None = None) -> None:
        configure_model_libraries(settings.allow_downloads)
        self.settings = settings
        self._given_embeddings = embeddings

    @cached_property
    def embedding_spec(self) -> EmbeddingSpec:
        given = self._given_embeddings
        if given is not None:
            return EmbeddingSpec("langchain", f"{type(given).__module__}.{type(given).__qualname__}")
        return EmbeddingSpec.parse(self.settings.embeddings)

    @cached_property
    def embeddings(self) -> SpaceEmbeddings:
        from pgrag.providers.embeddings import SpaceEmbeddings, load_embeddings

        if self._given_embeddings is not None:
            return SpaceEmbeddings(self._given_embeddings, self.embedding_spec)
        return load_embeddings(self.embedding_spec, self.settings)

    @cached_property
    def chat_model(self) -> BaseChatModel:
        from pgrag.providers.chat import load_chat_model

        return load_chat_model(self.settings)

    @cached_property
    def cross_encoder(self) -> BaseCrossEncoder | None:
        from pgrag.providers.reranker import load_cross_encoder

        return load_cross_encoder(self.settings)

    @cached_property
    def blend_weight(self) -> float | None:
        """Resolved once: it reads the model's training record (and, for ``auto``, the model cache)."""
        from pgrag.providers.reranker import blend_weight

        return blend_weight(self.settings)
