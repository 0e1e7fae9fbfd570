"""Grounded output: citation numbers that name no source are removed (also while streaming), the cited sources
are listed, an answer with an uncited sentence is flagged, and an answer saying the sources lack the answer is
recognised as an abstention."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import RunnableGenerator

# What the prompt and the grammar ask a model to write when the sources do not answer the question.
ABSTENTION = "The sources do not say."
_ABSTAINS = re.compile(
    r"sources? do(?:es)? not say|\b(?:sources?|context|documents?|passages?|knowledge base)\b[^.]{0,40}"
    r"\b(?:do(?:es)?n['o]?t|not|no)\b[^.]{0,25}\b(?:say|mention|contain|provide|include|specify|state|cover|"
    r"answer|information)|\bno information\b|\bnot (?:mentioned|specified|stated|provided) in\b",
    re.IGNORECASE,
)
_CITATION = re.compile(r"\s?\[(\d+(?:\s*,\s*\d+)*)\]")
# A citation right after a full stop ("… 128. [3]") belongs to the sentence before it.
_SENTENCE = re.compile(r"(?<=[.!?\]])\s+(?=[^\s\[])")


def clean_citations(text: str, n_sources: int) -> str:
    """Keep the valid numbers of each ``[n, m]``; a bracket left with none is removed."""

    def keep(match: re.Match[str]) -> str:
        numbers = [n for n in (int(x) for x in match.group(1).split(",")) if 1 <= n <= n_sources]
        if not numbers:
            return ""
        return match.group(0)[: match.start(1) - match.start(0)] + ", ".join(map(str, numbers)) + "]"

    return _CITATION.sub(keep, text)


def extract_citations(answer: str, sources: list[Document]) -> list[dict[str, Any]]:
    """The sources the answer cites, in order of first citation; numbers outside the list are ignored."""
    numbers: list[int] = []
    for match in _CITATION.finditer(answer):
        for number in (int(n) for n in match.group(1).split(",")):
            if 1 <= number <= len(sources) and number not in numbers:
                numbers.append(number)
    return [
        {"number": n, "source": sources[n - 1].metadata.get("source"), "chunk_id": sources[n - 1].metadata.get("chunk_id")}
        for n in numbers
    ]


def is_abstention(answer: str) -> bool:
    return bool(_ABSTAINS.search(answer))


def uncited_sentences(answer: str) -> list[str]:
    return [s for s in _SENTENCE.split(answer.strip()) if s.strip() and not _CITATION.search(s)]


class _Filter:
    """Streams text on, holding back only an unfinished ``[...]`` until it closes, so an invalid citation is
    removed before anyone sees it."""

    def __init__(self, n_sources: int) -> None:
        self.n_sources, self.held = n_sources, ""

    def feed(self, piece: str) -> str:
        text = self.held + piece
        start = text.rfind("[")
        if start == -1 or "]" in text[start:] or len(text) - start > 12:
            start = len(text)
        while start > 0 and text[start - 1] == " ":  # a space may belong to a citation about to come
            start -= 1
        self.held, text = text[start:], text[:start]
        return clean_citations(text, self.n_sources)

    def flush(self) -> str:
        text, self.held = self.held, ""
        return clean_citations(text, self.n_sources)


def citation_filter(n_sources: int, on_piece: Callable[[], None] = lambda: None) -> RunnableGenerator:
    """A streaming step (str → str) that removes citation numbers outside 1..``n_sources``; ``on_piece`` is
    called as each piece arrives from the model (for the time to first token and the token rate)."""

    def pieces(chunks: Iterator[str]) -> Iterator[str]:
        flt = _Filter(n_sources)
        for chunk in chunks:
            on_piece()
            if out := flt.feed(chunk):
                yield out
        if rest := flt.flush():
            yield rest

    async def apieces(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
        flt = _Filter(n_sources)
        async for chunk in chunks:
            on_piece()
            if out := flt.feed(chunk):
                yield out
        if rest := flt.flush():
            yield rest

    return RunnableGenerator(pieces, apieces, name="citation_filter")
