"""Training a cross-encoder reranker, or adapting the embedding model, offline: from the packaged MiniLM
weights and a BEIR-format dataset.

No trained cross-encoder ships in any pip package, so pgrag makes its own: each judged (query, passage) pair
is an example, with hard negatives mined by pgrag's own hybrid retriever (the passages it would wrongly rank
high) and other queries' passages in the batch as easy ones, trained with a ranking loss (the model learns to
pick the relevant passage out of the group, which teaches a fresh scoring head far faster than labelling pairs
one by one). A slice of the training queries is kept for validation, where the weight that blends the
cross-encoder's order with the hybrid order is chosen. Held-out queries are never used. The embedding model
learns from the same examples.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ranx import Qrels

from pgrag.errors import InvalidInput
from pgrag.evaluation.beir import BeirDataset, holdout as split_queries
from pgrag.evaluation.runner import score
from pgrag.providers.reranker import TRAINING_RECORD
from pgrag.chains.rerank import blend

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Candidate blend weights; None is the cross-encoder's order alone, 0 the hybrid order alone.
BLEND_WEIGHTS: tuple[float | None, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, None)

# Share of the training queries train-reranker validates on; train-embeddings keeps the same split.
VALIDATION_FRACTION = 0.15
# Hybrid results per training query that hard negatives are drawn from.
MINING_DEPTH = 30

Example = tuple[str, ...]  # (query, relevant passage, hard negative, ...)

if TYPE_CHECKING:
    from pgrag.kb import KnowledgeBase


@dataclass
class TrainingData:
    kb: KnowledgeBase
    dataset: BeirDataset
    collection: str
    examples: list[Example]
    query_ids: dict[str, list[str]]  # role (train, validation, heldout) → query ids

    def save_query_ids(self, target: Path) -> None:
        """Beside the model, so evaluation can keep to the queries it never saw (``heldout_queries.txt``)."""
        for role, ids in self.query_ids.items():
            (target / f"{role}_queries.txt").write_text("\n".join(ids) + "\n")


def prepare(kb: KnowledgeBase, dataset: BeirDataset, collection: str, *, holdout: float, validation: float,
            seed: int, negatives: int) -> TrainingData:
    """Split the queries (held out, validation, train) and mine the training examples from the ingested corpus."""
    train_ids, heldout_ids = split_queries(list(dataset.queries), holdout, seed)
    fit_ids, validation_ids = split_queries(train_ids, validation, seed)
    judged = [(dataset.queries[qid], set(dataset.qrels[qid]),
               [_passage(dataset, doc_id) for doc_id in dataset.qrels[qid] if doc_id in dataset.corpus])
              for qid in fit_ids]
    examples = mine_examples(kb, collection, judged, negatives, depth=MINING_DEPTH, seed=seed)
    if not examples:
        raise InvalidInput(f"No training examples: no query in {dataset.name} has a judged passage and {negatives} "
                           "unjudged ones to contrast it with. Lower --negatives or use a larger corpus.")
    return TrainingData(kb, dataset, collection, examples,
                        {"train": fit_ids, "validation": validation_ids, "heldout": heldout_ids})


@dataclass
class TrainingReport:
    examples: int
    steps: int
    seconds: float
    blend_weight: float | None
    validation_ndcg: dict[str, float]


def mine_examples(kb: KnowledgeBase, collection: str, queries: list[tuple[str, set[str], list[str]]],
                  negatives: int, depth: int, seed: int) -> list[Example]:
    """One example per positive passage of each (query, relevant sources, positive passages): the query, the
    passage, and ``negatives`` passages from other sources drawn from the top ``depth`` of pgrag's hybrid
    search for that query. A query with too few such passages gives none."""
    rng = random.Random(seed)
    retriever = kb.retriever(collection=collection, k=depth, mode="hybrid", rerank=False)
    examples: list[Example] = []
    for query, relevant, positives in queries:
        hard = [doc.page_content for doc in retriever.invoke(query) if doc.metadata["source"] not in relevant]
        if len(hard) >= negatives:
            examples.extend((query, positive, *rng.sample(hard, negatives)) for positive in positives)
    return examples


def _passage(dataset: BeirDataset, doc_id: str) -> str:
    title, text = dataset.corpus[doc_id]
    return f"{title}\n\n{text}".strip()


def train_model(kind: Literal["cross-encoder", "embeddings"], examples: list[Example], out: Path, *, epochs: float,
                batch_size: int, learning_rate: float, max_steps: int | None, seed: int,
                in_batch_negatives: int = 3, max_length: int | None = None) -> tuple[int, float]:
    """Fine-tune the packaged MiniLM on the examples as a cross-encoder or as the embedding model, and save it
    to ``out``; returns (steps, seconds). Both learn to pick each query's passage out of its group, with the
    batch's other passages as extra negatives: a cross-encoder pays a forward pass for each of those (so it
    samples ``in_batch_negatives``), an embedding model gets them all for free. ``max_length`` (tokens of query
    + passage) applies to the cross-encoder; the embedding model keeps the length it embeds with."""
    import torch
    from datasets import Dataset

    from pgrag.providers.embeddings import packaged_model_path

    base = packaged_model_path(BASE_MODEL)
    if kind == "cross-encoder":
        from sentence_transformers.cross_encoder import CrossEncoder as Model
        from sentence_transformers.cross_encoder import CrossEncoderTrainer as Trainer
        from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as Arguments
        from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss

        model = Model(base, num_labels=1, max_length=max_length)
        loss = MultipleNegativesRankingLoss(model, num_negatives=in_batch_negatives)
    else:
        from sentence_transformers import SentenceTransformer as Model
        from sentence_transformers import SentenceTransformerTrainer as Trainer
        from sentence_transformers import SentenceTransformerTrainingArguments as Arguments
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        model = Model(base)
        loss = MultipleNegativesRankingLoss(model)
    columns = ["query", "positive", *(f"negative_{i}" for i in range(len(examples[0]) - 2))]
    train = Dataset.from_dict({name: [example[i] for example in examples] for i, name in enumerate(columns)})
    with tempfile.TemporaryDirectory() as scratch:
        args = Arguments(
            output_dir=scratch, num_train_epochs=epochs, max_steps=max_steps or -1,
            per_device_train_batch_size=batch_size, learning_rate=learning_rate, warmup_steps=0.1,
            batch_sampler="no_duplicates",  # a query's own passage must not come back as its in-batch negative
            seed=seed, save_strategy="no", logging_steps=10, report_to="none",
            use_cpu=not torch.cuda.is_available(), disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=train, loss=loss)
        started = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    return int(result.global_step), seconds


def choose_blend_weight(kb: KnowledgeBase, dataset: BeirDataset, collection: str, query_ids: list[str], model_dir: Path
                        ) -> tuple[float | None, dict[str, float]]:
    """Score each validation query's hybrid candidates with the new model once, then pick the blend weight
    with the best nDCG@10 (ties go to the lighter weight). Returns (weight, nDCG@10 per weight)."""
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder

    model = HuggingFaceCrossEncoder(model_name=str(model_dir))
    retriever = kb.retriever(collection=collection, k=kb.settings.rerank_candidates, mode="hybrid", rerank=False)
    scored = []
    for qid in query_ids:
        documents = retriever.invoke(dataset.queries[qid])
        scores = model.score([(dataset.queries[qid], doc.page_content) for doc in documents]) if documents else []
        scored.append((qid, [doc.metadata["source"] for doc in documents], scores))
    qrels = Qrels({qid: dataset.qrels[qid] for qid in query_ids})
    results: dict[str, float] = {}
    for weight in BLEND_WEIGHTS:
        run = {}
        for qid, docs, scores in scored:
            ranking = list(dict.fromkeys(blend(docs, scores, weight, kb.settings.rrf_k)))  # a source at its best chunk
            run[qid] = {doc: float(len(ranking) - rank) for rank, doc in enumerate(ranking)} or {"__none__": 0.0}
        results[_label(weight)] = score(qrels, run, _label(weight))["ndcg@10"]
    best = max(BLEND_WEIGHTS, key=lambda weight: results[_label(weight)])
    return best, results


def _label(weight: float | None) -> str:
    return "cross-encoder alone" if weight is None else f"{weight:g}"


def write_record(out: Path, report: TrainingReport, **details: Any) -> None:
    """The training record beside the model: the blend weight the retriever applies, and how it was chosen."""
    record = {"blend_weight": report.blend_weight, "validation_ndcg@10": report.validation_ndcg,
              "base_model": BASE_MODEL, "examples": report.examples, "steps": report.steps,
              "training_seconds": round(report.seconds, 1), **details}
    (out / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
