"""The ingest pipeline: load → split → skip unchanged → embed in large batches → write whole documents.

Embedding dominates the cost, so documents are grouped until a batch fills and embedded in one call (the
encoder sorts a large batch by length and pads less). The batch's documents are then written in one
transaction: a crash loses at most that batch, never half a document, and one commit per batch instead of
one per document keeps the database's share of the time small.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from pgrag.errors import UnusableFile
from pgrag.ingest.loaders import READER_VERSIONS, LoadedFile
from pgrag.ingest.splitting import Chunk, Splitter

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # New chunks nearly equal to other documents'; None when not checked (a bulk load).
    duplicates: list[dict[str, Any]] | None = field(default_factory=list)
    chunks: int = 0  # written
    embedded: int = 0  # chunks embedded so far (a large document is embedded in several calls)
    seconds: float = 0.0
    total: int = 0  # items to ingest

    @property
    def items_done(self) -> int:
        return len(self.added) + len(self.updated) + len(self.unchanged) + len(self.failed)

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0


@dataclass
class PreparedDocument:
    source: str
    content_hash: str
    metadata: dict[str, Any]
    chunks: list[Chunk]


# A loader thunk per item, so a failure in one is caught, reported and skipped without touching the others.
LoadItem = tuple[str, Callable[[], LoadedFile]]
# Writes a batch and returns the sources it wrote (a concurrent writer may have stored the same content first).
WriteBatch = Callable[[list[tuple[PreparedDocument, np.ndarray]]], list[str]]
# The stored content hash of each of these sources, now.
StoredHashes = Callable[[list[str]], dict[str, str]]


def content_hash(loaded: LoadedFile, splitter: Splitter) -> str:
    """Changes when the bytes, the chunking settings or the file kind's reader change, so any of them re-chunks
    the document."""
    version = READER_VERSIONS.get(loaded.kind, 1)
    reader = f":reader{version}" if version > 1 else ""  # version 1 hashes as before any reader changed
    return hashlib.sha256(loaded.raw + (splitter.fingerprint + reader).encode()).hexdigest()


def prepare(items: Iterable[LoadItem], splitter: Splitter, known: dict[str, str], max_chunks: int,
            report: IngestReport, on_progress: Callable[[IngestReport], None]) -> Iterator[PreparedDocument]:
    seen: set[str] = set()
    for name, load in items:
        try:
            loaded = load()
            if loaded.source in seen:
                continue
            seen.add(loaded.source)
            digest = content_hash(loaded, splitter)
            if known.get(loaded.source) == digest:
                report.unchanged.append(loaded.source)
                on_progress(report)
                continue
            doc_chunks = splitter.split(loaded.sections, loaded.kind, str(loaded.metadata.get("title") or ""),
                                        loaded.metadata.get("language"))
            if not doc_chunks:
                raise UnusableFile("no text left after splitting")
            if len(doc_chunks) > max_chunks:
                raise UnusableFile(f"splits into {len(doc_chunks):,} chunks, over the limit of {max_chunks:,} per "
                                   "document; split the file, or raise PGRAG_MAX_DOCUMENT_CHUNKS")
            yield PreparedDocument(loaded.source, digest, loaded.metadata, doc_chunks)
        except Exception as exc:  # noqa: BLE001 - any failure of one file is reported, never fatal to the run
            reason = str(exc) if isinstance(exc, UnusableFile) else f"could not be read ({type(exc).__name__}: {exc})"
            report.failed.append((name, reason))
            log.warning("Skipped %s: %s", name, reason)
            on_progress(report)


def embed(embeddings: Embeddings, texts: list[str], batch: int, on_embedded: Callable[[int], None]) -> np.ndarray:
    """Embed in calls of ``batch`` texts, kept as float32: a large document's vectors as Python lists of floats
    would take ~8x the memory (900 MB for the 73k chunks of a 50 MB file instead of 112 MB)."""
    parts = []
    for start in range(0, len(texts), batch):
        parts.append(np.asarray(embeddings.embed_documents(texts[start:start + batch]), dtype=np.float32))
        on_embedded(len(parts[-1]))
    return np.concatenate(parts)


def run(
    items: list[LoadItem],
    *,
    splitter: Splitter,
    embeddings: Embeddings,
    known: dict[str, str],
    stored: StoredHashes,
    write: WriteBatch,
    batch_chunks: int,
    max_chunks: int,
    on_progress: Callable[[IngestReport], None] = lambda report: None,
) -> IngestReport:
    report = IngestReport(total=len(items))
    started = time.perf_counter()
    pending: list[PreparedDocument] = []
    pending_chunks = 0
    # One writer thread: the database stores batch n while the encoder embeds batch n+1.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgrag-writer")
    writing: Future | None = None

    def write_and_report(batch: list[tuple[PreparedDocument, np.ndarray]]) -> None:
        written = set(write(batch))
        for doc, _ in batch:
            if doc.source in written:
                (report.updated if doc.source in known else report.added).append(doc.source)
                report.chunks += len(doc.chunks)
            else:
                report.unchanged.append(doc.source)
            on_progress(report)

    def embedded(count: int) -> None:
        report.embedded += count
        on_progress(report)

    def flush() -> None:
        nonlocal writing, pending_chunks
        # Another process ingesting the same files may have stored some since the run began: skip embedding them.
        current = stored([doc.source for doc in pending])
        fresh = [doc for doc in pending if current.get(doc.source) != doc.content_hash]
        report.unchanged.extend(doc.source for doc in pending if current.get(doc.source) == doc.content_hash)
        pending.clear()
        pending_chunks = 0
        if not fresh:
            on_progress(report)
            return
        vectors = embed(embeddings, [chunk.indexed for doc in fresh for chunk in doc.chunks], batch_chunks, embedded)
        batch, offset = [], 0
        for doc in fresh:
            batch.append((doc, vectors[offset:offset + len(doc.chunks)]))
            offset += len(doc.chunks)
        if writing is not None:
            writing.result()  # batches land in order, and a failed write stops the run here
        writing = writer.submit(write_and_report, batch)

    try:
        for doc in prepare(items, splitter, known, max_chunks, report, on_progress):
            pending.append(doc)
            pending_chunks += len(doc.chunks)
            if pending_chunks >= batch_chunks:
                flush()
        if pending:
            flush()
        if writing is not None:
            writing.result()
    finally:
        writer.shutdown(wait=True)
    report.seconds = time.perf_counter() - started
    return report
