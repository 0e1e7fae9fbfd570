"""Cross-encoder rerankers, and the resolution of ``auto`` to what this machine actually has."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pgrag.config import Settings
from pgrag.errors import InvalidInput
from pgrag.specs import parse_spec

log = logging.getLogger(__name__)

HUB_RERANKER = "cross-encoder/ms-marco-MiniLM-L-6-v2"
# Written by `pgrag train-reranker` beside its model: the blend weight it chose on validation queries.
TRAINING_RECORD = "pgrag-reranker.json"


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
        raise InvalidInput(f"Unsupported reranker {spec!r}: use huggingface:<name-or-path> or none.")
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder

    return HuggingFaceCrossEncoder(model_name=parsed.model)


def blend_weight(settings: Settings) -> float | None:
    """How much the cross-encoder's order counts against the hybrid order (see ``chains.rerank.blend``):
    ``PGRAG_RERANK_WEIGHT`` if set, else the weight recorded with a model trained by pgrag, else None (the
    cross-encoder's order alone)."""
    if settings.rerank_weight is not None:
        return settings.rerank_weight
    spec = resolve_reranker_spec(settings)
    record = Path(parse_spec(spec).model) / TRAINING_RECORD if spec != "none" else None
    if record is not None and record.is_file():
        return json.loads(record.read_text(encoding="utf-8"))["blend_weight"]
    return None
