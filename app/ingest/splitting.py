"""Splitting into semantically whole chunks: headings first, then paragraphs, lines and sentences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from pgrag.errors import InvalidInput
from pgrag.ingest.loaders import Section

_HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


@dataclass(frozen=True)
class Chunk:
    text: str
    metadata: dict[str, Any]


class Splitter:
    """``chunk_size=None`` keeps every section whole: texts that arrive already split (the VectorStore's)."""

    def __init__(self, chunk_size: int | None, chunk_overlap: int = 0) -> None:
        self.whole = chunk_size is None
        if self.whole:
            self.fingerprint = "whole"
            return
        if chunk_overlap >= chunk_size:
            raise InvalidInput(f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})")
        self.fingerprint = f"recursive:{chunk_size}:{chunk_overlap}"
        self._headings = MarkdownHeaderTextSplitter(_HEADINGS, strip_headers=False)
        self._recursive = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, separators=_SEPARATORS, keep_separator="end"
        )

    def split(self, sections: list[Section], kind: str) -> list[Chunk]:
        if self.whole:
            return [Chunk(section.text.strip(), section.metadata) for section in sections if section.text.strip()]
        chunks: list[Chunk] = []
        for section in sections:
            parts = (
                [(d.page_content, d.metadata) for d in self._headings.split_text(section.text)]
                if kind in ("markdown", "html")
                else [(section.text, {})]
            )
            for text, heading_metadata in parts:
                headings = " > ".join(heading_metadata[key] for _, key in _HEADINGS if key in heading_metadata)
                metadata = {**section.metadata, **({"headings": headings} if headings else {})}
                chunks.extend(Chunk(piece.strip(), metadata) for piece in self._recursive.split_text(text)
                              if piece.strip())
        return chunks
