"""Cross-encoder rerankers, and the resolution of ``auto`` to what this machine actually has."""

from __future__ import annotations

import logging

from app.config import Settings
from app.providers import parse_spec

log = logging.getLogger(__name__)

HUB_RERANKER = "cross-encoder/ms-marco-MiniLM-L-6-v2"


def resolve_reranker_spec(settings: Settings) -> str:
    """``auto`` → the hub cross-encoder if it is cached locally (or downloads are allowed), else the reranker
    trained by ``pgrag train-reranker``, else ``none``. Other specs are returned unchanged."""
    if settings.reranker != "auto":
        return settings.reranker
    if settings.allow_downloads or _in_hub_cache(HUB_RERANKER):
        return f"huggingface:{HUB_RERANKER}"
    trained = settings.models_dir / "reranker"
    if (trained / "config.json").exists():
        return f"huggingface:{trained}"
    return "none"


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def load_cross_encoder(settings: Settings):
    """The LangChain cross-encoder for the configured reranker, or None when reranking is off."""
    spec = resolve_reranker_spec(settings)
    if spec == "none":
        return None
    parsed = parse_spec(spec)
    if parsed.provider != "huggingface":
        raise ValueError(f"Unsupported reranker {spec!r}: use huggingface:<name-or-path> or none.")
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder

    return HuggingFaceCrossEncoder(model_name=parsed.model)
