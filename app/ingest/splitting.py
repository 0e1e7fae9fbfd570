"""Splitting into semantically whole chunks: headings first, then paragraphs, lines and sentences."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import Language, MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from pgrag.errors import InvalidInput
from pgrag.ingest.loaders import HEADED_KINDS, Section

_HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]

# LangChain's heading splitter drops every character that ``str.isprintable`` refuses, spaces other than ASCII's
# among them, which glues the words on either side: the PostgreSQL manual's 33,898 no-break spaces ("Table 8.2",
# "8.1.1. Integer Types") became "Table8.2" and "8.1.1.Integer Types", in what is shown, indexed and embedded.
_UNICODE_SPACE = re.compile(r"[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_UNICODE_LINE_BREAK = re.compile(r"[\u2028\u2029]")


def plain_spaces(text: str) -> str:
    """``text`` with tabs and Unicode spaces as plain spaces and Unicode line separators as line breaks."""
    return _UNICODE_LINE_BREAK.sub("\n", _UNICODE_SPACE.sub(" ", text))


# LangChain's heading splitter also strips every line, and code lost its indentation. Inside code blocks, where
# indentation is meaning, it goes through the splitters as braille blanks (printable, not whitespace) and comes back
# as spaces. A chunk's size counts its text without them: what is embedded and indexed ignores indentation, and so
# chunks end where they ended before code kept its indentation.
_INDENT_MARK = "\u2800"
_INDENT = re.compile(r"^ +")


def _fence(line: str) -> str:
    """The fence a line of markdown opens or closes a code block with, or "" (as LangChain's splitter sees it)."""
    stripped = line.strip()
    return next((mark for mark in ("```", "~~~") if stripped.startswith(mark) and stripped.count(mark) == 1), "")


def _marked_indentation(markdown: str) -> str:
    """``markdown`` with the leading spaces of each line in a code block as ``_INDENT_MARK``s."""
    lines, fence = [], ""
    for line in markdown.split("\n"):
        mark = _fence(line)
        if fence and mark != fence:
            line = _INDENT.sub(lambda spaces: _INDENT_MARK * len(spaces.group()), line)
        elif fence:
            fence = ""
        else:
            fence = mark
        lines.append(line)
    return "\n".join(lines)


def _text_length(text: str) -> int:
    return len(text) - text.count(_INDENT_MARK)


# How far into a chunk a context part counts as already said (a section's first chunk starts with its heading).
CONTEXT_SEEN_CHARS = 300


def indexed_text(context: str, text: str) -> str:
    """What is embedded for a chunk: its context above its text, as a reader sees a passage under its headings."""
    return f"{context}\n\n{text}" if context else text


@dataclass(frozen=True)
class Chunk:
    text: str  # shown and quoted
    metadata: dict[str, Any]
    context: str = ""  # document title > heading path, indexed and embedded with the text

    @property
    def indexed(self) -> str:
        return indexed_text(self.context, self.text)


def chunk_context(parts: list[str], text: str) -> str:
    """The title and headings joined as a path, leaving out what the chunk itself already starts with and
    what an earlier part already says (a page's title usually repeats its first heading)."""
    seen = text[:CONTEXT_SEEN_CHARS].lower()
    kept: list[str] = []
    for part in (p.strip() for p in parts):
        if part and part.lower() not in seen and not any(part.lower() in k.lower() for k in kept):
            kept.append(part)
    return " > ".join(kept)


class Splitter:
    """``chunk_size=None`` keeps every section whole: texts that arrive already split (the VectorStore's)."""

    def __init__(self, chunk_size: int | None, chunk_overlap: int = 0, contextual: bool = False) -> None:
        self.whole = chunk_size is None
        self.contextual = contextual
        if self.whole:
            self.fingerprint = "whole"
            return
        if chunk_overlap >= chunk_size:
            raise InvalidInput(f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})")
        self.fingerprint = f"recursive:{chunk_size}:{chunk_overlap}" + (":context" if contextual else "")
        self._headings = MarkdownHeaderTextSplitter(_HEADINGS, strip_headers=False)
        self._recursive = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, separators=_SEPARATORS, keep_separator="end",
            length_function=_text_length)
        self._sizes = {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
        self._code_splitters: dict[str, RecursiveCharacterTextSplitter] = {}

    def _code_splitter(self, language: str) -> RecursiveCharacterTextSplitter:
        """Cuts source code at classes and functions first (LangChain's separators for the language)."""
        if language not in self._code_splitters:
            self._code_splitters[language] = RecursiveCharacterTextSplitter.from_language(
                Language(language), **self._sizes)
        return self._code_splitters[language]

    def _heading_parts(self, text: str) -> list[tuple[str, list[str]]]:
        """``text`` cut at its headings, each part with its heading path, spaces and code indentation kept."""
        return [(d.page_content, [d.metadata[key] for _, key in _HEADINGS if key in d.metadata])
                for d in self._headings.split_text(_marked_indentation(plain_spaces(text)))]

    def split(self, sections: list[Section], kind: str, title: str = "", language: str | None = None) -> list[Chunk]:
        if self.whole:
            return [Chunk(section.text.strip(), section.metadata) for section in sections if section.text.strip()]
        chunks: list[Chunk] = []
        for section in sections:
            parts = self._heading_parts(section.text) if kind in HEADED_KINDS else [(section.text, [])]
            splitter = self._code_splitter(language) if language else self._recursive
            for text, path in parts:
                metadata = {**section.metadata, **({"headings": " > ".join(path)} if path else {})}
                for piece in (p.strip().replace(_INDENT_MARK, " ") for p in splitter.split_text(text)):
                    if piece:
                        context = chunk_context([title, *path], piece) if self.contextual else ""
                        chunks.append(Chunk(piece, metadata, context))
        return chunks
