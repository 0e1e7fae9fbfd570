"""`pgrag tune`: zero-label domain adaptation of the reranker to one collection.

No judged queries are needed. The offline chat model writes a question for each chunk of a sample of the
collection (the chunk is that question's answer); pgrag's hybrid retriever mines the passages of other documents
it ranks high for the question (hard negatives); the cross-encoder is then fine-tuned on them exactly as
`pgrag train-reranker` trains on judged queries (``pgrag.training``). Writing the questions is the slow part
(seconds a chunk on 2 cores), so each is appended to ``questions.jsonl`` as soon as it exists, and a second run
resumes after the last one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from pgrag.chains.prompts import load_prompt
from pgrag.db import spaces, store
from pgrag.errors import InvalidInput
from pgrag.evaluation.beir import BeirDataset, holdout as split_queries
from pgrag.training import MINING_DEPTH, TrainingData, mine_examples

if TYPE_CHECKING:
    from pgrag.kb import KnowledgeBase

QUESTIONS_FILE = "questions.jsonl"
MIN_CHUNK_CHARS = 200  # shorter chunks (headings, table rows) rarely answer a question on their own
PASSAGE_CHARS = 1500  # what the chat model reads of a chunk: about its first 400 tokens
QUESTION_TOKENS = 64
_LEAD = re.compile(r'^(?:question\s*:\s*|\d+[.)]\s*|[-*"]\s*)+', re.IGNORECASE)


def synthetic_question(llm: BaseChatModel, passage: str) -> str | None:
    """One question the passage answers, in the chat model's words; None when it wrote no usable question."""
    prompt = ChatPromptTemplate.from_messages([("human", load_prompt("synthetic_question.txt"))])
    chain = prompt | llm.bind(max_tokens=QUESTION_TOKENS) | StrOutputParser()
    text = chain.invoke({"passage": passage[:PASSAGE_CHARS]})
    line = next((_LEAD.sub("", line).strip().strip('"') for line in text.splitlines() if line.strip()), "")
    return line if line.endswith("?") and len(line.split()) >= 4 else None


def write_questions(kb: KnowledgeBase, llm: BaseChatModel, collection: str, folder: Path, *, sample: int, seed: int,
                    on_progress: Callable[[int, int], None] = lambda done, total: None) -> list[dict[str, Any]]:
    """A question for each of ``sample`` chunks of the collection, resuming from ``folder/questions.jsonl``:
    rows of chunk_id, source, content and question (chunks the model wrote no question for are left out)."""
    path = folder / QUESTIONS_FILE
    written = {row["chunk_id"]: row["question"] for row in _read_rows(path)}
    with kb.engine.connect() as conn:
        chunks = store.sample_chunks(conn, spaces.collection_id(conn, collection), sample, seed, MIN_CHUNK_CHARS)
    if not chunks:
        raise InvalidInput(f"Collection {collection!r} has no chunk of {MIN_CHUNK_CHARS}+ characters to write "
                           "questions for; ingest documents first.")
    folder.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        for done, chunk in enumerate(chunks, 1):
            if chunk["chunk_id"] not in written:
                written[chunk["chunk_id"]] = question = synthetic_question(llm, chunk["content"])
                out.write(json.dumps({"chunk_id": chunk["chunk_id"], "source": chunk["source"],
                                      "question": question}) + "\n")
                out.flush()
            on_progress(done, len(chunks))
    return [{**chunk, "question": written[chunk["chunk_id"]]} for chunk in chunks if written[chunk["chunk_id"]]]


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # the last line of a run that was killed mid-write: written again
            continue
    return rows


def tuning_data(kb: KnowledgeBase, collection: str, rows: list[dict[str, Any]], *, validation: float, seed: int,
                negatives: int) -> TrainingData:
    """Training examples from the synthetic questions, a validation slice judged by the question's own
    document (to choose the blend weight), and no held-out queries: the collection's real queries are those."""
    by_id = {str(row["chunk_id"]): row for row in rows}
    fit_ids, validation_ids = split_queries(list(by_id), validation, seed)
    questions = [(by_id[i]["question"], {by_id[i]["source"]}, [by_id[i]["content"]]) for i in fit_ids]
    examples = mine_examples(kb, collection, questions, negatives, depth=MINING_DEPTH, seed=seed)
    if not examples:
        raise InvalidInput(f"No training examples: no synthetic question found {negatives} passages of other "
                           "documents to contrast with. Lower --negatives or tune a larger collection.")
    dataset = BeirDataset(collection, corpus={}, queries={i: row["question"] for i, row in by_id.items()},
                          qrels={i: {row["source"]: 1} for i, row in by_id.items()})
    return TrainingData(kb, dataset, collection, examples, {"train": fit_ids, "validation": validation_ids})
