"""Provider spec strings (``provider:model``) → LangChain objects. One module per kind of model."""

from __future__ import annotations

import os
from typing import NamedTuple


class ProviderSpec(NamedTuple):
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_spec(spec: str) -> ProviderSpec:
    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise ValueError(f"Provider spec {spec!r} must look like 'provider:model', e.g. 'huggingface:/path/to/model'.")
    return ProviderSpec(provider.strip().lower(), model.strip())


def configure_model_libraries(allow_downloads: bool) -> None:
    """Keep model libraries off the network unless allowed, and quiet; must run before they are imported."""
    if not allow_downloads:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
