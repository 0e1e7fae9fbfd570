"""How fast the packaged chat model reads a prompt, by llama.cpp batch size and flash attention (the prompt is
most of an answer's time on 2 cores).

    .venv/bin/python scripts/bench_chat_prompt.py [--model qwen2.5-1.5b] [--variants 8,512,512+flash] [--rounds 2]

A variant is a batch size, with "+flash" for llama.cpp's flash attention. Each round reads the same ~600-token
prompt once per variant in a fresh context (no prefix cache), variants alternating so that all see the same
machine (8 is ChatLlamaCpp's default batch, 512+flash what pgrag uses); it prints tokens/s per round and the
median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from llama_cpp import Llama

from pgrag.config import Settings
from pgrag.providers.chat import PROMPT_BATCH_TOKENS
from pgrag.providers.gguf import gguf_path

PROMPT = (Path(__file__).resolve().parents[1] / "docs" / "retrieval.md").read_text()[:2400]


def tokens_per_second(path: str, variant: str, n_ctx: int) -> float:
    """With the threads and context that app/providers/chat.py gives the model, only the variant's options varied."""
    n_batch, _, flash = variant.partition("+")
    if flash not in ("", "flash"):
        raise SystemExit(f"Unknown variant {variant!r}: a batch size, optionally followed by '+flash'.")
    llm = Llama(model_path=path, n_ctx=n_ctx, n_batch=int(n_batch), flash_attn=flash == "flash",
                n_threads=os.cpu_count(), verbose=False)
    n_tokens = len(llm.tokenize(PROMPT.encode()))
    started = time.perf_counter()
    llm.create_completion(PROMPT, max_tokens=1, temperature=0)
    return n_tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--variants", default=f"8,{PROMPT_BATCH_TOKENS},{PROMPT_BATCH_TOKENS}+flash")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = Settings()
    path = str(gguf_path(args.model, settings.models_dir))
    speeds: dict[str, list[float]] = {variant: [] for variant in args.variants.split(",")}
    for _ in range(args.rounds):
        for variant, found in speeds.items():
            found.append(tokens_per_second(path, variant, settings.context_window))
            print(f"{variant}: {found[-1]:.0f} tokens/s", flush=True)
    for variant, found in speeds.items():
        print(f"{variant}: median {statistics.median(found):.0f} tokens/s over {len(found)} rounds")


if __name__ == "__main__":
    main()
