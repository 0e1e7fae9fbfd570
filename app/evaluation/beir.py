"""Reading BEIR-format datasets, and the fixed-seed query holdout shared by training and evaluation.

A dataset folder holds ``queries.jsonl`` and ``qrels/<split>.tsv``, and either the BEIR ``corpus.jsonl`` (short
entries, one chunk each) or a ``files.json`` naming a folder of files to ingest as a user would (loaders,
chunking, headings), e.g. a software manual whose questions are judged by page.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document

from pgrag.errors import InvalidInput
from pgrag.ingest import loaders

if TYPE_CHECKING:
    from pgrag.ingest.pipeline import IngestReport
    from pgrag.kb import KnowledgeBase


# One chunk per corpus entry: BEIR judges whole entries (the encoder truncates long ones itself).
CORPUS_CHUNKING = {"chunk_size": 100_000, "chunk_overlap": 0}


@dataclass(frozen=True)
class FileCorpus:
    """Files under ``root`` chosen by globs (as ``pgrag ingest --include/--exclude``); a document's id is its
    path relative to ``root``."""

    root: Path
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)

    def paths(self) -> list[Path]:
        return list(loaders.discover([self.root], self.include or None, self.exclude or None))


@dataclass
class BeirDataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # doc id → (title, text)
    queries: dict[str, str]  # query id → text, only queries with judgments in the split
    qrels: dict[str, dict[str, int]]  # query id → doc id → relevance
    files: FileCorpus | None = None

    @property
    def chunking(self) -> dict[str, Any]:
        """Settings to ingest with: a file corpus is chunked as configured, BEIR entries stay whole."""
        return {} if self.files else CORPUS_CHUNKING

    def doc_id(self, source: str) -> str:
        """The corpus id of a stored document's source."""
        return str(Path(source).relative_to(self.files.root.resolve())) if self.files else source

    def ingest(self, kb: KnowledgeBase, collection: str,
               on_progress: Callable[[IngestReport], None] = lambda report: None) -> IngestReport:
        if self.files:
            return kb.ingest([self.files.root], collection=collection, include=self.files.include or None,
                             exclude=self.files.exclude or None, on_progress=on_progress)
        return kb.ingest_documents(self.documents(), collection=collection, on_progress=on_progress)

    @property
    def collection(self) -> str:
        """The collection pgrag ingests this dataset into unless told otherwise."""
        return f"beir-{self.name}"

    def documents(self) -> Iterator[Document]:
        """One Document per corpus entry, title and text together (what BM25 and the encoder both see)."""
        for doc_id, (title, text) in self.corpus.items():
            yield Document(f"{title}\n\n{text}".strip(), metadata={"source": doc_id, "title": title})


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def load_beir(folder: Path, split: str | None = None, query_ids: set[str] | None = None) -> BeirDataset:
    folder = Path(folder)
    files = _file_corpus(folder / "files.json")
    for required in ("queries.jsonl", "qrels") if files else ("corpus.jsonl", "queries.jsonl", "qrels"):
        if not (folder / required).exists():
            raise InvalidInput(f"{folder} is not a BEIR dataset: {required} is missing")
    splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
    split = split or ("test" if "test" in splits else splits[0] if splits else "")
    qrels_file = folder / "qrels" / f"{split}.tsv"
    if not qrels_file.exists():
        raise InvalidInput(f"No qrels for split {split!r} in {folder / 'qrels'}; available: {', '.join(splits)}")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(encoding="utf-8") as rows:
        for row in csv.DictReader(rows, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    if query_ids is not None:
        qrels = {qid: docs for qid, docs in qrels.items() if qid in query_ids}
    queries = {str(q["_id"]): q["text"] for q in _jsonl(folder / "queries.jsonl") if str(q["_id"]) in qrels}
    corpus = _read_files(files) if files else {
        str(d["_id"]): (d.get("title", ""), d.get("text", "")) for d in _jsonl(folder / "corpus.jsonl")}
    return BeirDataset(folder.name, corpus, queries, {qid: qrels[qid] for qid in queries}, files)


def _file_corpus(path: Path) -> FileCorpus | None:
    if not path.exists():
        return None
    spec = json.loads(path.read_text(encoding="utf-8"))
    root = Path(spec["root"])
    if not root.is_dir():
        raise InvalidInput(f"{path} names {root}, which is not a folder here{spec.get('hint', '')}")
    return FileCorpus(root, spec.get("include", []), spec.get("exclude", []))


def _read_files(files: FileCorpus) -> dict[str, tuple[str, str]]:
    """Each file's title and text as pgrag's loaders read them (what the bm25s reference indexes)."""
    corpus = {}
    for path in files.paths():
        loaded = loaders.load(path)
        corpus[str(path.relative_to(files.root))] = (
            str(loaded.metadata["title"]), "\n\n".join(section.text for section in loaded.sections))
    return corpus


def read_query_ids(path: Path) -> set[str]:
    """Query ids from a file: one id per line, or BEIR queries JSON lines (with ``_id``)."""
    ids = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            ids.add(str(json.loads(line)["_id"]) if line.startswith("{") else line)
    return ids


def holdout(query_ids: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split query ids into (train, held out) reproducibly: the same ids and seed always give the same split."""
    shuffled = sorted(query_ids)
    random.Random(seed).shuffle(shuffled)
    cut = round(len(shuffled) * fraction)
    return sorted(shuffled[cut:]), sorted(shuffled[:cut])


def script_arguments(description: str | None = None) -> argparse.ArgumentParser:
    """The arguments of the scripts that measure on an ingested BEIR dataset; read them with
    :func:`load_from_arguments`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default=None)
    parser.add_argument("--queries", type=Path, default=None, help="Only these query ids (one per line).")
    parser.add_argument("--collection", default=None, help="Default: beir-<dataset folder name>.")
    return parser


def load_from_arguments(args: argparse.Namespace) -> tuple[BeirDataset, str]:
    """(dataset, collection) from :func:`script_arguments`."""
    dataset = load_beir(args.dataset, args.split, read_query_ids(args.queries) if args.queries else None)
    return dataset, args.collection or dataset.collection
