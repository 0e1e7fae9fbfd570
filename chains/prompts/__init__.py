"""Prompts live as text files beside this module, so they can be read and edited without touching code."""

from pathlib import Path

PROMPTS = Path(__file__).parent


def load_prompt(name: str) -> str:
    return (PROMPTS / name).read_text(encoding="utf-8")
