"""File discovery and loading: documents, slides, e-books, records and source code → text sections, with a clear
reason when a file is unusable. Office formats and e-books are read by the libraries LangChain's community
loaders wrap (python-docx, python-pptx, EbookLib); headings become markdown headings so the splitter can cut at
them and record the heading path."""

from __future__ import annotations

import codecs
import csv
import fnmatch
import html
import io
import json
import re
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgrag.errors import UnusableFile

# Source code: the language names langchain_text_splitters.Language knows, for language-aware splitting.
CODE_SUFFIXES = {".py": "python", ".js": "js", ".jsx": "js", ".ts": "ts", ".tsx": "ts", ".go": "go", ".rs": "rust",
                 ".java": "java", ".kt": "kotlin", ".scala": "scala", ".c": "c", ".h": "c", ".cpp": "cpp",
                 ".hpp": "cpp", ".cs": "csharp", ".rb": "ruby", ".php": "php", ".swift": "swift", ".lua": "lua"}
SUPPORTED_SUFFIXES = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
                      ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".epub": "epub", ".csv": "csv", ".tsv": "csv",
                      ".jsonl": "jsonl", ".ndjson": "jsonl", **dict.fromkeys(CODE_SUFFIXES, "code")}
# Kinds whose text carries markdown headings (the splitter cuts at them).
HEADED_KINDS = {"markdown", "html", "docx", "pptx", "epub"}


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
        raise UnusableFile(f"unsupported file type {path.suffix or '(none)'}; pgrag reads "
                           f"{', '.join(sorted(SUPPORTED_SUFFIXES))}")
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
    reader = READERS.get(kind)
    sections = reader(raw) if reader else [Section(_read_text(raw, kind))]
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise UnusableFile("no text found" + (" (a scanned PDF needs OCR first)" if kind == "pdf" else ""))
    title = _title(sections[0].text, kind, raw) or path.stem
    metadata = {"title": title, "file_name": path.name, "type": kind}
    if kind == "code":
        metadata["language"] = CODE_SUFFIXES[path.suffix.lower()]
    return LoadedFile(source_of(path), kind, raw, sections, metadata)


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


# Page furniture that is not the page's content: navigation bars, sidebars, headers and footers, as HTML5 marks
# them, as ARIA roles mark them, and as the common documentation generators mark them (Sphinx's sidebar and
# related-pages bars, DocBook's navheader/navfooter), plus Sphinx's "¶" permalink after every heading.
_HTML_FURNITURE = ("script, style, noscript, template, nav, header, footer, aside, [role=navigation], [role=banner], "
                   "[role=contentinfo], [role=search], div.sphinxsidebar, div.related, div.footer, div.navheader, "
                   "div.navfooter, a.headerlink")


# A note, tip or warning box titled with a heading (DocBook's <div class="note"><h3>Note</h3>: 452 of them in the
# PostgreSQL manual) would open a section of its own, and everything after the box up to the next real heading would
# be filed under it ("psql > Note" for the whole list of meta-commands). Its title is read as a line of text.
_ADMONITION_TITLES = ":is(.note, .tip, .warning, .caution, .important, .admonition) > :is(h1, h2, h3, h4, h5, h6)"


def _html_to_markdown(html: str) -> str:
    """The page's main content as markdown (markdownify): headings the splitter can cut at, tables as rows whose
    cells stay together, code as fenced blocks, and paragraphs on one line each, as a browser would flow them."""
    from bs4 import BeautifulSoup
    from markdownify import ATX, MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    for element in soup.select(_HTML_FURNITURE):
        element.decompose()
    for title in soup.select(_ADMONITION_TITLES):
        title.name = "p"
        if not title.get_text().rstrip().endswith((".", ":", "!", "?")):
            title.append(":")
    content = soup.select_one("main, [role=main]") or soup.body or soup
    converter = MarkdownConverter(heading_style=ATX, bullets="-", wrap=True, wrap_width=None,
                                  escape_asterisks=False, escape_underscores=False, strip=["a", "img", "em", "i"])
    try:
        markdown = converter.convert_soup(content)
    except RecursionError:  # markdownify recurses per level: unclosed tags can nest a page hundreds of levels deep
        markdown = content.get_text("\n")
    return re.sub(r"\n\s*\n\s*\n+", "\n\n", markdown).strip()


def _read_pdf(raw: bytes) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        return [Section(page.extract_text() or "", {"page": number}) for number, page in enumerate(reader.pages, 1)]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnusableFile(f"is not a readable PDF ({exc})") from exc


@contextmanager
def _parsing(what: str) -> Iterator[None]:
    """A format library's error while parsing means the file is not a readable ``what``; they raise anything."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - zipfile, lxml, KeyError, ...: all say the same to the user
        raise UnusableFile(f"is not a readable {what} ({type(exc).__name__}: {exc})") from exc


def _read_docx(raw: bytes) -> list[Section]:
    import docx

    lines = []
    with _parsing("Word document"):
        document = docx.Document(io.BytesIO(raw))
        for paragraph in document.paragraphs:
            style = paragraph.style.name if paragraph.style is not None else ""
            level, text = style.removeprefix("Heading ").strip(), paragraph.text.strip()
            if text and (level.isdigit() or style == "Title"):
                text = f"{'#' * min(int(level) if level.isdigit() else 1, 6)} {text}"
            lines.append(text)
        for table in document.tables:
            lines.extend(" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows)
    return [Section("\n\n".join(line for line in lines if line))]


def _read_pptx(raw: bytes) -> list[Section]:
    """One section per slide (its number in the metadata), the slide's title as a heading, notes included."""
    from pptx import Presentation

    sections = []
    with _parsing("PowerPoint file"):
        for number, slide in enumerate(Presentation(io.BytesIO(raw)).slides, 1):
            title_shape = slide.shapes.title
            title = title_shape.text_frame.text.strip() if title_shape is not None else ""
            texts = [shape.text_frame.text.strip() for shape in slide.shapes
                     if shape.has_text_frame and (title_shape is None or shape.shape_id != title_shape.shape_id)]
            if slide.has_notes_slide:
                texts.append(slide.notes_slide.notes_text_frame.text.strip())
            body = "\n\n".join(text for text in texts if text)
            sections.append(Section(f"# {title}\n\n{body}" if title else body, {"slide": number}))
    return sections


def _read_epub(raw: bytes) -> list[Section]:
    """One section per chapter in reading order, its XHTML read as any HTML page is. By hand (an EPUB is a zip of
    XHTML files listed in an OPF spine) because the maintained EPUB library, EbookLib, is AGPL-licensed."""
    import posixpath
    import zipfile

    from bs4 import BeautifulSoup

    with _parsing("EPUB"):
        book = zipfile.ZipFile(io.BytesIO(raw))
        container = BeautifulSoup(book.read("META-INF/container.xml"), "html.parser")
        opf_path = container.find("rootfile")["full-path"]
        opf = BeautifulSoup(book.read(opf_path), "html.parser")
        files = {item["id"]: item["href"] for item in opf.find_all("item")}
        chapters = [book.read(posixpath.join(posixpath.dirname(opf_path), files[ref["idref"]])).decode("utf-8", "replace")
                    for ref in opf.find("spine").find_all("itemref")]
    return [Section(_html_to_markdown(html), {"chapter": number}) for number, html in enumerate(chapters, 1)]


def _read_csv(raw: bytes) -> list[Section]:
    """A row is a record: one section per row, as ``column: value`` lines, so a chunk never mixes two rows."""
    text = _decode(raw)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = csv.DictReader(io.StringIO(text), dialect=dialect)
    try:
        return [Section(_record_text(row), {"row": number}) for number, row in enumerate(rows, 1)]
    except csv.Error as exc:
        raise UnusableFile(f"is not readable CSV (line {rows.line_num}: {exc})") from exc


def _read_jsonl(raw: bytes) -> list[Section]:
    """One JSON value per line, each a record."""
    sections = []
    for number, line in enumerate(_decode(raw).splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UnusableFile(f"line {number} is not JSON ({exc.msg}); JSON Lines needs one value per line") from exc
            sections.append(Section(_record_text(record) if isinstance(record, dict) else str(record), {"line": number}))
    return sections


def _record_text(record: dict[Any, Any]) -> str:
    return "\n".join(f"{key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}"
                     for key, value in record.items() if value not in (None, ""))


# Bumped for a kind when what is read from it, or how its text is cut into chunks, changes, so that re-ingesting
# such files rebuilds their chunks (it is part of their content hash); kinds not listed are at version 1. html 2:
# titles' entities decoded; html 3: the page's main content as markdown (navigation left out, tables as rows,
# paragraphs reflowed); every kind split at headings, html 4 and the others 2: no-break and other Unicode spaces
# kept as spaces (splitting.plain_spaces); html 5: a note or tip box's title is no heading (_ADMONITION_TITLES);
# html 6 and the others 3: code keeps its indentation (splitting._marked_indentation).
READER_VERSIONS = {**{kind: 3 for kind in HEADED_KINDS}, "html": 6}

READERS = {"pdf": _read_pdf, "docx": _read_docx, "pptx": _read_pptx, "epub": _read_epub, "csv": _read_csv,
           "jsonl": _read_jsonl}


def _title(text: str, kind: str, raw: bytes) -> str | None:
    if kind == "html":
        match = re.search(rb"<title[^>]*>(.*?)</title>", raw, re.IGNORECASE | re.DOTALL)
        if match:  # entities decoded ("&#8212;" is "—"), line breaks and runs of spaces made one space
            return " ".join(html.unescape(match.group(1).decode("utf-8", "replace")).split()) or None
    match = re.search(r"^#{1,6}\s+(.+)$", text, re.MULTILINE) if kind in HEADED_KINDS else None
    return match.group(1).strip() if match else None
