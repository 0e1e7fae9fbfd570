"""File discovery and loading: txt, md, html, pdf → text sections, with a clear reason when a file is unusable."""

from __future__ import annotations

import codecs
import fnmatch
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgrag.errors import UnusableFile

SUPPORTED_SUFFIXES = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
                      ".pdf": "pdf"}


@dataclass
class Section:
    """A run of text with its own metadata (a PDF page, or the whole of a text file)."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadedFile:
    source: str
    kind: str
    raw: bytes
    sections: list[Section]
    metadata: dict[str, Any]


def discover(paths: Iterable[Path], include: list[str] | None = None, exclude: list[str] | None = None) -> Iterator[Path]:
    """Files named directly, and supported files found recursively in folders, filtered by glob patterns. Inside a
    folder, a link to anything outside that folder is not followed: ingesting ``docs/`` never reads ``/etc``."""
    for path in paths:
        if path.is_dir():
            root = path.resolve()
            candidates: Iterable[Path] = sorted(
                p for p in path.rglob("*")
                if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file() and p.resolve().is_relative_to(root))
        else:
            candidates = [path]
        for candidate in candidates:
            name = candidate.as_posix()
            if include and not any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(candidate.name, pattern)
                                   for pattern in include):
                continue
            if exclude and any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(candidate.name, pattern)
                               for pattern in exclude):
                continue
            yield candidate


def source_of(path: Path) -> str:
    """How a file is named in the store: its absolute path, so every working directory agrees."""
    return str(path.expanduser().resolve())


def load(path: Path, max_bytes: int | None = None) -> LoadedFile:
    """Read one file into sections; ``UnusableFile`` says why one cannot be used (too large, binary, ...)."""
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UnusableFile(f"unsupported file type {path.suffix or '(none)'}; pgrag reads .txt, .md, .html and .pdf")
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO or a device would block or never end
            raise UnusableFile("is not a regular file (a pipe, socket or device); pgrag reads files")
        if max_bytes is not None and status.st_size > max_bytes:
            raise UnusableFile(f"is {status.st_size / 1e6:,.1f} MB, over the {max_bytes / 1e6:,.1f} MB limit; "
                               "raise PGRAG_MAX_FILE_MB to ingest it")
        raw = path.read_bytes()
    except OSError as exc:
        raise UnusableFile(f"cannot read the file: {exc.strerror or exc}") from exc
    if not raw.strip():
        raise UnusableFile("the file is empty")
    sections = _read_pdf(raw) if kind == "pdf" else [Section(_read_text(raw, kind))]
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise UnusableFile("no text found" + (" (a scanned PDF needs OCR first)" if kind == "pdf" else ""))
    title = _title(sections[0].text, kind, raw) or path.stem
    return LoadedFile(source_of(path), kind, raw, sections, {"title": title, "file_name": path.name, "type": kind})


def _decode(raw: bytes) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UnusableFile(f"starts like UTF-16 but is not valid UTF-16 ({exc.reason})") from exc
    if b"\x00" in raw[:8192]:
        raise UnusableFile("looks binary (contains NUL bytes), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnusableFile(
            f"is not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start}); convert it to UTF-8 first"
        ) from exc


def _read_text(raw: bytes, kind: str) -> str:
    text = _decode(raw)
    return _html_to_markdown(text) if kind == "html" else text


def _html_to_markdown(html: str) -> str:
    """Keep headings as markdown headings so the splitter can cut at them; drop scripts and styles."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    for anchor in soup.select("a.headerlink"):  # Sphinx's "¶" permalink after every heading
        anchor.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for block in soup.find_all(["p", "li", "pre", "tr", "div", "br"]):
        block.insert_after("\n")
    text = soup.body.get_text() if soup.body else soup.get_text()
    return re.sub(r"\n\s*\n\s*\n+", "\n\n", text).strip()


def _read_pdf(raw: bytes) -> list[Section]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        return [Section(page.extract_text() or "", {"page": number}) for number, page in enumerate(reader.pages, 1)]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnusableFile(f"is not a readable PDF ({exc})") from exc


def _title(text: str, kind: str, raw: bytes) -> str | None:
    if kind == "html":
        match = re.search(rb"<title[^>]*>(.*?)</title>", raw, re.IGNORECASE | re.DOTALL)
        if match:
            return match.group(1).decode("utf-8", "replace").strip() or None
    match = re.search(r"^#{1,6}\s+(.+)$", text, re.MULTILINE) if kind in ("markdown", "html") else None
    return match.group(1).strip() if match else None
