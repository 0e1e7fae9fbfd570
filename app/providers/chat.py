"""Chat model providers: packaged GGUF models (or your own) through llama.cpp offline, anything LangChain knows
by config (OpenAI-compatible servers included)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel

from pgrag.config import Settings
from pgrag.providers.gguf import Progress, gguf_path
from pgrag.specs import parse_spec


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


def _assembly_progress() -> Progress:
    """A progress bar on stderr for the one-time joining of a packaged model's parts."""
    from rich.progress import Progress as Bar

    state: dict[str, object] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            bar = state["bar"] = Bar(transient=True)
            bar.start()
            state["task"] = bar.add_task("Joining the packaged chat model (once)", total=total)
        bar = state["bar"]
        bar.update(state["task"], completed=done)
        if done >= total:
            bar.stop()

    return update


# ChatLlamaCpp's default reads the prompt 8 tokens at a time; whole 512-token batches read it ~1.9x faster on 2
# cores (27 -> 51 tokens/s for a 600-token prompt, scripts/bench_chat_prompt.py), and the prompt is most of an
# answer's time.
PROMPT_BATCH_TOKENS = 512


def load_chat_model(settings: Settings) -> BaseChatModel:
    spec = parse_spec(settings.chat_model)
    if spec.provider == "llamacpp":
        return _serialized_llamacpp()(
            model_path=str(gguf_path(spec.model, settings.models_dir, _assembly_progress())),
            n_ctx=settings.context_window,
            n_batch=PROMPT_BATCH_TOKENS,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            n_threads=os.cpu_count(),
            # Flash attention reads the same prompts ~7 % faster on 2 cores (docs/eval/answers.md); llama-cpp-python
            # leaves it off unless asked.
            model_kwargs={"flash_attn": True},
            verbose=False,
            streaming=True,
        )
    from langchain.chat_models import init_chat_model

    return init_chat_model(str(spec), temperature=settings.temperature, max_tokens=settings.max_tokens)
