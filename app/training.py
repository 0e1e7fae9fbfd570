"""Training a cross-encoder reranker offline, from the packaged MiniLM weights and a BEIR-format dataset.

No trained cross-encoder ships in any pip package, so pgrag makes its own: positives from the qrels, hard
negatives mined by pgrag's own hybrid retriever (the passages it would wrongly rank high), trained with
sentence-transformers' CrossEncoderTrainer. Only the training queries are used; the held-out ones are written
next to the model so evaluation can be restricted to queries the reranker never saw.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.evaluation.beir import BeirDataset

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class TrainingReport:
    train_queries: int
    heldout_queries: int
    pairs: int
    steps: int
    seconds: float
    out: Path


def mine_pairs(kb: Any, dataset: BeirDataset, collection: str, query_ids: list[str], negatives: int,
               depth: int, seed: int) -> list[tuple[str, str, float]]:
    """(query, passage, label) pairs: every judged passage, plus ``negatives`` unjudged ones per query drawn
    from the top ``depth`` of pgrag's hybrid search."""
    rng = random.Random(seed)
    retriever = kb.retriever(collection=collection, k=depth, mode="hybrid", rerank=False)
    doc_ids = sorted(dataset.corpus)
    pairs: list[tuple[str, str, float]] = []
    for qid in query_ids:
        query, relevant = dataset.queries[qid], dataset.qrels[qid]
        pairs += [(query, _passage(dataset, doc_id), 1.0) for doc_id in relevant if doc_id in dataset.corpus]
        candidates = [doc.page_content for doc in retriever.invoke(query) if doc.metadata["source"] not in relevant]
        hard = rng.sample(candidates, min(negatives - negatives // 2, len(candidates)))
        # Half the negatives are random passages: easy ones let the untrained head learn the task's basics
        # before the hard ones refine it.
        easy = [_passage(dataset, doc_id) for doc_id in rng.sample(doc_ids, negatives // 2) if doc_id not in relevant]
        pairs += [(query, passage, 0.0) for passage in hard + easy]
    rng.shuffle(pairs)
    return pairs


def _passage(dataset: BeirDataset, doc_id: str) -> str:
    title, text = dataset.corpus[doc_id]
    return f"{title}\n\n{text}".strip()


def train_cross_encoder(pairs: list[tuple[str, str, float]], out: Path, *, epochs: float, batch_size: int,
                        learning_rate: float, max_steps: int | None, seed: int, negatives: int,
                        max_length: int) -> tuple[int, float]:
    """Fine-tune a MiniLM cross-encoder on the pairs and save it to ``out``; returns (steps, seconds)."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from app.providers.embeddings import packaged_model_path

    model = CrossEncoder(packaged_model_path(BASE_MODEL), num_labels=1, max_length=max_length)
    train = Dataset.from_dict({
        "query": [p[0] for p in pairs], "passage": [p[1] for p in pairs], "label": [p[2] for p in pairs],
    })
    # Negatives outnumber positives; weighting positives keeps the classifier from learning "always no".
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(max(1, negatives))))
    with tempfile.TemporaryDirectory() as scratch:
        args = CrossEncoderTrainingArguments(
            output_dir=scratch, num_train_epochs=epochs, max_steps=max_steps or -1,
            per_device_train_batch_size=batch_size, learning_rate=learning_rate, warmup_steps=0.1,
            seed=seed, save_strategy="no", logging_steps=50, report_to="none", use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
        )
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=train, loss=loss)
        started = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    return int(result.global_step), seconds
