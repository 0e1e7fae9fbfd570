"""The `pgrag` command line (Typer + Rich)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import click
import typer
from typer.core import TyperGroup
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from pgrag.config import SearchMode, Settings
from pgrag.errors import PgragError
from pgrag.kb import KnowledgeBase

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from pgrag.evaluation.beir import BeirDataset
    from pgrag.training import TrainingData

console = Console()
errors = Console(stderr=True)


class _Commands(TyperGroup):
    """The one error handler: a pgrag error is one red line (no traceback) and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PgragError as exc:
            errors.print(f"[red]Error:[/red] {exc}", highlight=False)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(help="pgrag: ask questions of your documents, on PostgreSQL + pgvector.", no_args_is_help=True,
                  pretty_exceptions_enable=False, cls=_Commands)
db_app = typer.Typer(help="Database: migrations, psql.", no_args_is_help=True)
app.add_typer(db_app, name="db")

CollectionOption = Annotated[Optional[str], typer.Option("--collection", "-c", help="Collection (default: settings).")]


@contextmanager
def knowledge_base(**overrides: Any) -> Iterator[KnowledgeBase]:
    """Open the knowledge base for one command."""
    from pgrag.db.embedded import install_signal_handlers

    install_signal_handlers()
    with KnowledgeBase.open(**{k: v for k, v in overrides.items() if v is not None}) as kb:
        # Libraries' warnings (pypdf's about each malformed PDF, ...) go to the log, not between pgrag's lines.
        kb.settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        logging.basicConfig(filename=kb.settings.log_file, level=logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.captureWarnings(True)
        yield kb


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (searched recursively).")],
    collection: CollectionOption = None,
    include: Annotated[Optional[list[str]], typer.Option(help="Glob of files to take, e.g. '*.md'.")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option(help="Glob of files to skip.")] = None,
) -> None:
    """Ingest documents, slides, e-books, records and code (see the README). Unchanged files are skipped;
    changed ones are replaced."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        errors.print(f"[red]Error:[/red] no such file or folder: {', '.join(missing)}")
        raise typer.Exit(2)
    with knowledge_base() as kb, _progress() as progress:
        task = progress.add_task("Ingesting", total=None, chunks=0)
        report = kb.ingest(
            paths, collection=collection, include=include, exclude=exclude,
            on_progress=lambda r: progress.update(task, completed=r.items_done, total=r.total, chunks=r.embedded),
        )
    for name, reason in report.failed:
        errors.print(f"[yellow]Skipped[/yellow] {name}: {reason}")
    if report.failed:
        errors.print(f"Readers' warnings about these files are in {kb.settings.log_file}")
    if report.duplicates is None:
        console.print("Near-duplicates were not checked for a bulk load; `pgrag duplicates` lists them.")
    elif report.duplicates:
        first = report.duplicates[0]
        console.print(f"[yellow]{len(report.duplicates)} new chunk(s) nearly duplicate another document's[/yellow] "
                      f"(similarity >= {kb.settings.duplicate_threshold}), e.g. {first['source_a']} ~ "
                      f"{first['source_b']} ({first['similarity']:.3f}); `pgrag duplicates` lists them all.")
    console.print(
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
        f"{len(report.failed)} failed; {report.chunks} chunks in {report.seconds:.1f}s "
        f"({report.chunks_per_second:.1f} chunks/s)"
    )


@app.command()
def delete(source: Annotated[str, typer.Argument(help="The document's source (its path).")],
           collection: CollectionOption = None) -> None:
    """Delete a document and its chunks."""
    with knowledge_base() as kb:
        kb.delete(source, collection=collection, missing_ok=False)
    console.print(f"Deleted {source}")


@app.command()
def search(
    query: str,
    k: Annotated[Optional[int], typer.Option("-k", help="Number of results.")] = None,
    mode: Annotated[Optional[SearchMode], typer.Option(help="dense, lexical or hybrid.")] = None,
    collection: CollectionOption = None,
    filter: Annotated[Optional[str], typer.Option(help='Metadata filter as JSON, e.g. \'{"type": "pdf"}\'.')] = None,
    rerank: Annotated[bool, typer.Option(help="Rerank with the configured cross-encoder.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Semantic search without an LLM: hybrid retrieval, then reranking."""
    from pgrag.retrieval import best_similarity, is_weak

    metadata_filter = _parse_filter(filter)
    with knowledge_base() as kb:
        docs = kb.search(query, k=k, mode=mode, collection=collection, filter=metadata_filter, rerank=rerank)
        threshold = kb.settings.min_relevance
    weak = is_weak(docs, threshold)
    if as_json:
        print(json.dumps([{"content": d.page_content, **d.metadata, "weak": weak} for d in docs], default=str,
                         indent=2))
        return
    for number, doc in enumerate(docs, 1):
        console.print(search_result(number, doc, query))
    if not docs:
        console.print("No results.")
    if weak and docs:
        errors.print(f"[yellow]Weak match:[/yellow] the best passage's similarity {best_similarity(docs):.2f} is "
                     f"below {threshold:.2f}; the knowledge base may not cover this question.")


def search_result(number: int, doc: Document, query: str) -> Text:
    """One result in a few lines that fit any terminal: where it is (file name, section, chunk) first, then a
    snippet of its sentences that share most words with the query, those words highlighted, then the scores."""
    from pgrag.chains.context import excerpt, source_label, split_sentences, terms

    metadata = doc.metadata
    wanted = terms(query)
    place = Text(f"{number}. ", style="bold")
    place.append(Path(metadata["source"]).name or metadata["source"], style="bold cyan")
    label = source_label(doc)
    place.append(f"  {label}" if label else "", style="cyan")
    place.append(f"  chunk {metadata['chunk_id']}", style="dim")
    snippet = Text("   " + excerpt(query, split_sentences(doc.page_content), 240, dict.fromkeys(wanted, 1.0)))
    for word in re.finditer(r"[A-Za-z_][A-Za-z0-9_]+", snippet.plain):
        if word.group().lower()[:6] in wanted:
            snippet.stylize("bold yellow", word.start(), word.end())
    scores = ", ".join(f"{key.removesuffix('_score')} {value:.3g}" for key, value in metadata["scores"].items()
                       if value is not None and not key.endswith("_rank"))
    return Text("\n").join([place, snippet, Text(f"   {scores}", style="dim")]) + Text("\n")


@app.command()
def ask(question: str, collection: CollectionOption = None,
        k: Annotated[Optional[int], typer.Option("-k", help="Most sources given to the model.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output, printed at the end.")] = False,
        ) -> None:
    """Answer a question from the knowledge base, streaming the answer, then list the cited sources."""
    from pgrag.chains.answer import collect, json_ready

    def show(piece: str) -> None:
        console.print(piece, end="", highlight=False, markup=False)

    with knowledge_base() as kb:
        result = collect(kb.answer_chain(collection=collection, k=k).stream({"question": question}),
                         on_answer=(lambda piece: None) if as_json else show)
    if as_json:
        print(json.dumps(json_ready(result), indent=2, default=str))
        return
    console.print()
    if result["abstained"] and not result["retrieval"]["weak"]:
        console.print("[yellow]Not answered:[/yellow] the retrieved passages do not contain the answer; the closest "
                      "sources are listed below.")
    elif not result["grounded"]:
        console.print("[yellow]Unverified:[/yellow] part of this answer cites no source or names what no source contains.")
    health = result["retrieval"]
    if health.get("best_similarity") is not None:
        console.print(f"[dim]best passage similarity {health['best_similarity']:.2f} "
                      f"(threshold {health['threshold']:.2f})[/dim]")
    cited = {c["number"] for c in result["citations"]}
    for number, doc in enumerate(result["sources"], 1):
        marker = "[bold green]cited[/bold green]" if number in cited else "[dim]not cited[/dim]"
        console.print(f"[{number}] {doc.metadata['source']} (chunk {doc.metadata['chunk_id']}) {marker}",
                      highlight=False)


@app.command("eval-answers")
def eval_answers(
    questions: Annotated[Path, typer.Argument(help="JSON lines: question, answer (regex), gold sources; or "
                                                   '"answerable": false.')],
    collection: CollectionOption = None,
    models: Annotated[Optional[str], typer.Option(
        help="Comma-separated chat model specs to compare (default: the configured one).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N questions.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write every answer and figure here.")] = None,
) -> None:
    """Measure answers: correct and cited, citation precision, abstention on unanswerable questions, speed."""
    from pgrag.evaluation.answers import as_json, evaluate_answers, load_cases

    cases = load_cases(questions)[:limit]
    reports = []
    for spec in (models.split(",") if models else [None]):
        with knowledge_base(chat_model=spec) as kb, _progress(count_chunks=False) as progress:
            task = progress.add_task(f"Asking {kb.settings.chat_model}", total=len(cases))
            reports.append(evaluate_answers(kb, cases, collection or kb.settings.collection,
                                            on_case=lambda done, result: progress.update(task, completed=done)))
    # Figures as rows, models as columns: it stays readable in 80 columns with three models side by side.
    table = Table("figure", *(report.chat_model.removeprefix("llamacpp:") for report in reports),
                  title=f"{questions.name}: {len(cases)} questions")
    for figure in reports[0].metrics:
        table.add_row(figure.replace("_", " "), *("-" if report.metrics[figure] is None else f"{report.metrics[figure]:g}"
                                                  for report in reports))
    console.print(table)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(as_json(reports, questions=str(questions), collection=collection))
        console.print(f"Wrote {json_out}")


@app.command()
def serve(host: Annotated[str, typer.Option()] = "127.0.0.1", port: Annotated[int, typer.Option()] = 8000) -> None:
    """Serve the HTTP API: /rag and /search (LangServe, with /rag/playground/), REST ingest, /docs."""
    import uvicorn

    from pgrag.server import create_app

    uvicorn.run(create_app(), host=host, port=port)


@app.command("eval")
def eval_command(
    dataset_dir: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")],
    split: Annotated[Optional[str], typer.Option(help="qrels split (default: test, else the only one).")] = None,
    queries: Annotated[Optional[Path], typer.Option(help="Evaluate only these query ids (one per line).")] = None,
    collection: CollectionOption = None,
    expansion: Annotated[Optional[str], typer.Option(help="Expansion for the +expansion modes.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write results as JSON here.")] = None,
    baselines: Annotated[bool, typer.Option(help="Also compute bm25s and ranx-fusion references.")] = True,
    modes: Annotated[Optional[str], typer.Option(help="Comma-separated subset of modes, e.g. hybrid,lexical.")]
    = None,
    ingest: Annotated[bool, typer.Option(
        help="Bring the collection up to date first, as a user's ingest would. --no-ingest evaluates it as it "
        "stands, e.g. to compare collections built by older code.")] = True,
) -> None:
    """Ingest a BEIR dataset (once) and report nDCG@10, recall@100, MRR@10 and queries/s for every mode."""
    from pgrag.evaluation.beir import load_beir, read_query_ids
    from pgrag.evaluation.runner import evaluate_dataset

    dataset = load_beir(dataset_dir, split, read_query_ids(queries) if queries else None)
    name = collection or dataset.collection
    with knowledge_base(**dataset.chunking) as kb:
        if ingest:
            _ingest_dataset(kb, dataset, name)
        else:
            kb.require_collection(name)
        with console.status("Evaluating") as status:
            result = evaluate_dataset(
                kb, dataset, name, expansion=expansion or kb.settings.expansion, with_baselines=baselines,
                only=set(modes.split(",")) if modes else None,
                on_mode=lambda mode: status.update(f"Evaluating {mode} on {len(dataset.queries)} queries"),
            )
    table = Table("mode", *METRIC_COLUMNS, "queries/s", "note", title=f"{dataset.name}: {result.split_queries} queries")
    for row in result.results:
        table.add_row(row.name, *(f"{row.metrics[m]:.4f}" if m in row.metrics else "-" for m in METRIC_COLUMNS),
                      f"{row.queries_per_second:.1f}" if row.queries_per_second else "-", row.note)
    console.print(table)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
        console.print(f"Wrote {json_out}")


METRIC_COLUMNS = ["ndcg@10", "recall@100", "mrr@10", "hit_rate@5"]


DatasetArgument = Annotated[Path, typer.Argument(help="BEIR folder with the training judgments.")]
SplitOption = Annotated[Optional[str], typer.Option(help="qrels split to learn from.")]
HoldoutOption = Annotated[float, typer.Option(min=0, max=0.9, help="Fraction of queries kept out of training.")]
SeedOption = Annotated[int, typer.Option(help="Seed of the holdout split, negatives and training.")]
NegativesOption = Annotated[int, typer.Option(min=1, help="Hard negatives per example, mined by hybrid search.")]
StepsOption = Annotated[Optional[int], typer.Option(help="Stop after this many steps (smoke tests).")]
RerankerOut = Annotated[Optional[Path], typer.Option(
    help="Where to save the model (default: data_dir/models/reranker, which PGRAG_RERANKER=auto uses).")]
ValidationOption = Annotated[float, typer.Option(
    min=0.01, max=0.5, help="Fraction of the training queries kept to choose the blend weight.")]
BatchOption = Annotated[int, typer.Option(min=1)]


@app.command("train-reranker")
def train_reranker(
    dataset_dir: DatasetArgument,
    out: RerankerOut = None,
    split: SplitOption = None,
    holdout: HoldoutOption = 0.25,
    validation: ValidationOption = 0.15,
    seed: SeedOption = 13,
    negatives: NegativesOption = 3,
    in_batch_negatives: Annotated[int, typer.Option(min=0, help="Other queries' passages added per example.")] = 3,
    epochs: Annotated[float, typer.Option(min=0)] = 2.0,
    batch_size: BatchOption = 16,
    learning_rate: Annotated[float, typer.Option()] = 3e-4,
    max_length: Annotated[int, typer.Option(min=32, help="Tokens of query + passage the model reads.")] = 128,
    max_steps: StepsOption = None,
    collection: CollectionOption = None,
) -> None:
    """Fine-tune a cross-encoder reranker from the packaged MiniLM weights, with hard negatives mined by pgrag,
    and choose on validation queries how much its order counts against the hybrid order.

    Evaluate with `pgrag eval DATASET --queries OUT/heldout_queries.txt` and PGRAG_RERANKER=huggingface:OUT."""
    with _training_data(dataset_dir, split, holdout, validation, seed, negatives, collection) as data:
        _fit_reranker(data, out, seed=seed, in_batch_negatives=in_batch_negatives, epochs=epochs,
                      batch_size=batch_size, learning_rate=learning_rate, max_length=max_length, max_steps=max_steps,
                      dataset=str(dataset_dir), holdout=holdout, validation=validation)


@app.command()
def tune(
    collection: CollectionOption = None,
    sample: Annotated[int, typer.Option(min=10, help="Chunks the chat model writes a question for.")] = 600,
    chat_model: Annotated[Optional[str], typer.Option(help="Writes the questions (default: PGRAG_CHAT_MODEL).")]
    = None,
    out: RerankerOut = None,
    validation: ValidationOption = 0.15,
    seed: SeedOption = 13,
    negatives: NegativesOption = 3,
    batch_size: BatchOption = 16,
    max_steps: StepsOption = None,
) -> None:
    """Adapt the reranker to a collection without any labels: the offline chat model writes a question for each
    of a sample of its chunks, pgrag mines hard negatives, and a cross-encoder is fine-tuned as train-reranker
    does. Questions are saved as they are written (OUT/questions.jsonl): an interrupted run resumes."""
    from pgrag.tuning import tuning_data, write_questions

    overrides = {"chat_model": chat_model} if chat_model else {}
    with knowledge_base(**overrides) as kb:
        name = collection or kb.settings.collection
        kb.require_collection(name)
        target = out or kb.settings.models_dir / "reranker"
        with _progress() as progress:
            task = progress.add_task(f"Writing questions ({kb.settings.chat_model})", total=sample, chunks=0)
            rows = write_questions(kb, kb.models.chat_model, name, target, sample=sample, seed=seed,
                                   on_progress=lambda done, total: progress.update(task, completed=done, total=total,
                                                                                   chunks=done))
        with console.status(f"Mining hard negatives for {len(rows)} questions"):
            data = tuning_data(kb, name, rows, validation=validation, seed=seed, negatives=negatives)
        _fit_reranker(data, target, seed=seed, batch_size=batch_size, max_steps=max_steps, collection=name,
                      synthetic_questions=len(rows), chat_model=kb.settings.chat_model, validation=validation)


def _fit_reranker(data: TrainingData, out: Path | None, *, seed: int, batch_size: int, max_steps: int | None,
                  in_batch_negatives: int = 3, epochs: float = 2.0, learning_rate: float = 3e-4, max_length: int = 128,
                  **record: Any) -> None:
    """Train the cross-encoder on the examples, choose the blend weight on the validation queries, and save the
    model with its training record (the defaults are train-reranker's)."""
    from pgrag.training import TrainingReport, choose_blend_weight, train_model, write_record

    target = out or data.kb.settings.models_dir / "reranker"
    with console.status(f"Training on {len(data.examples)} examples (CPU)"):
        steps, seconds = train_model(
            "cross-encoder", data.examples, target, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, max_steps=max_steps, seed=seed, in_batch_negatives=in_batch_negatives,
            max_length=max_length)
    validation_ids = data.query_ids["validation"]
    with console.status(f"Choosing the blend weight on {len(validation_ids)} validation queries"):
        weight, ndcg = choose_blend_weight(data.kb, data.dataset, data.collection, validation_ids, target)
    data.save_query_ids(target)
    report = TrainingReport(len(data.examples), steps, seconds, weight, ndcg)
    write_record(target, report, seed=seed, learning_rate=learning_rate, epochs=epochs, **record)
    table = ", ".join(f"{label} {value:.4f}" for label, value in ndcg.items())
    chosen = ("the cross-encoder alone" if weight is None else "weight 0: the hybrid order alone, since the model "
              "did not improve on it, so reranking with it changes nothing" if weight == 0 else f"weight {weight:g}")
    console.print(f"Trained on {len(data.examples)} examples: {steps} steps in {seconds:.0f}s. Validation nDCG@10 "
                  f"by blend weight: {table}; chose {chosen}. Saved to {target}.")


@app.command("train-embeddings")
def train_embeddings(
    dataset_dir: DatasetArgument,
    out: Annotated[Path, typer.Option(help="Where to save the model.")],
    split: SplitOption = None,
    holdout: HoldoutOption = 0.25,
    seed: SeedOption = 13,
    negatives: NegativesOption = 3,
    epochs: Annotated[float, typer.Option(min=0)] = 1.0,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    learning_rate: Annotated[float, typer.Option()] = 2e-5,
    max_steps: StepsOption = None,
    collection: CollectionOption = None,
) -> None:
    """Adapt the packaged MiniLM embedding model to a dataset's queries, with hard negatives mined by pgrag.

    Then `pgrag reindex --embeddings huggingface:OUT` moves a collection to it (and PGRAG_EMBEDDINGS to query
    it); evaluate with `pgrag eval DATASET --queries OUT/heldout_queries.txt`."""
    from pgrag.training import VALIDATION_FRACTION, train_model

    # The reranker's default split, so an adapted embedding model never sees the reranker's validation queries.
    with _training_data(dataset_dir, split, holdout, VALIDATION_FRACTION, seed, negatives, collection) as data:
        with console.status(f"Training on {len(data.examples)} examples (CPU)"):
            steps, seconds = train_model("embeddings", data.examples, out, epochs=epochs, batch_size=batch_size,
                                         learning_rate=learning_rate, max_steps=max_steps, seed=seed)
    data.save_query_ids(out)
    console.print(f"Trained on {len(data.examples)} examples: {steps} steps in {seconds:.0f}s. Saved to {out}; "
                  f"use it with `pgrag reindex --embeddings huggingface:{out}`.")


@contextmanager
def _training_data(dataset_dir: Path, split: str | None, holdout: float, validation: float, seed: int,
                   negatives: int, collection: str | None) -> Iterator[TrainingData]:
    """The training examples (see ``pgrag.training.prepare``), with a progress display; the knowledge base stays
    open for validation."""
    from pgrag.evaluation.beir import load_beir
    from pgrag.training import prepare

    dataset = load_beir(dataset_dir, split)
    name = collection or dataset.collection
    with knowledge_base(**dataset.chunking) as kb:
        _ingest_dataset(kb, dataset, name)
        with console.status("Mining hard negatives"):
            yield prepare(kb, dataset, name, holdout=holdout, validation=validation, seed=seed, negatives=negatives)


def _ingest_dataset(kb: KnowledgeBase, dataset: BeirDataset, collection: str) -> None:
    """Ingest a BEIR corpus with a progress bar; a second run finds every entry unchanged and embeds nothing."""
    with _progress() as progress:
        task = progress.add_task(f"Ingesting {dataset.name}", total=len(dataset.corpus), chunks=0)
        report = dataset.ingest(
            kb, collection, on_progress=lambda r: progress.update(task, completed=r.items_done, chunks=r.embedded))
    if report.failed:
        errors.print(f"[yellow]{len(report.failed)} corpus entries skipped[/yellow], e.g. {report.failed[0]}")


def _progress(count_chunks: bool = True) -> Progress:
    """A progress bar on stderr; with ``count_chunks``, beside it the task's ``chunks`` field (chunks embedded)."""
    chunks = (TextColumn("{task.fields[chunks]} chunks"),) if count_chunks else ()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *chunks, TimeElapsedColumn())
    return Progress(*columns, console=errors)


@app.command()
def reindex(
    embeddings: Annotated[str, typer.Option(help="The new embedding spec, e.g. 'huggingface:NAME?dimensions=256'.")],
    collection: CollectionOption = None,
    storage: Annotated[str, typer.Option(help="vector (float4) or halfvec (float2).")] = "vector",
    drop_retired: Annotated[bool, typer.Option(help="Then delete the retired spaces' vectors and indexes.")] = False,
    background: Annotated[bool, typer.Option(
        help="Run at the lowest CPU priority, so searches on the same machine keep their latency.")] = True,
) -> None:
    """Re-embed a collection under a new model from its stored chunks, while searches keep using the old one.

    Resumable: after an interruption, run the same command again. When it finishes, set PGRAG_EMBEDDINGS to
    the new spec."""
    import os

    from pgrag.specs import EmbeddingSpec

    if storage not in ("vector", "halfvec"):
        raise typer.BadParameter("--storage must be vector or halfvec")
    if background and hasattr(os, "nice"):
        # Only matters when the CPU is contended: on a machine with nothing else to do it costs no speed.
        # scripts/bench_spaces.py, 2 cores, 20 searches/s: search p95 during a reindex 1.24x idle, 9.7x without.
        os.nice(19)
    spec = EmbeddingSpec.parse(embeddings)
    with knowledge_base() as kb:
        name = collection or kb.settings.collection
        with _progress() as progress:
            task = progress.add_task(f"Re-embedding {name}", total=None, chunks=0)
            report = kb.reindex(spec, collection=name, storage=storage, on_progress=lambda done, total: progress.update(
                task, completed=done, total=total, chunks=done))
        if report.already_active:
            console.print(f"{name} is already embedded with {spec}; nothing to do.")
        else:
            console.print(f"{name}: space {report.space_id} ({spec}) is now active; embedded {report.embedded} "
                          f"chunks in {report.seconds:.1f}s ({report.chunks_per_second:.1f} chunks/s). "
                          f"Set PGRAG_EMBEDDINGS='{spec}' to search and ingest with it.")
        if drop_retired:
            console.print(f"Dropped {kb.drop_retired(collection=name)} retired vectors.")


@app.command("spaces")
def spaces_command(collection: CollectionOption = None) -> None:
    """List embedding spaces with their model, status and vector counts."""
    with knowledge_base() as kb:
        rows = kb.spaces(collection=collection)
    table = Table("collection", "space", "model", "dimension", "status", "vectors", "chunks")
    for row in rows:
        table.add_row(row["collection"], str(row["space_id"]), row["model"], str(row["dimension"]), row["status"],
                      str(row["vectors"]), str(row["chunks"]))
    console.print(table)


@app.command()
def collections() -> None:
    """List collections with their document and chunk counts."""
    with knowledge_base() as kb:
        rows = kb.collections()
    table = Table("collection", "documents", "chunks")
    for row in rows:
        table.add_row(row["name"], str(row["documents"]), str(row["chunk_count"]))
    console.print(table)


@app.command()
def documents(collection: CollectionOption = None) -> None:
    """List the documents of a collection."""
    with knowledge_base() as kb:
        rows = kb.documents(collection=collection)
    table = Table("source", "chunks", "updated")
    for row in rows:
        table.add_row(row["source"], str(row["chunks"]), f"{row['updated_at']:%Y-%m-%d %H:%M}")
    console.print(table)


@app.command()
def similar(target: Annotated[str, typer.Argument(help="A document's source, or a chunk id (a number).")],
            collection: CollectionOption = None, k: Annotated[int, typer.Option("-k", min=1)] = 5) -> None:
    """Documents like a document, or chunks like a chunk, from the stored vectors (no query text)."""
    with knowledge_base() as kb:
        rows = kb.similar(int(target) if target.isdigit() else target, collection=collection, k=k)
    _similarity_table(rows, ["similarity", "source", "chunk_id", "content"])


@app.command("duplicates")
def duplicates_command(collection: CollectionOption = None,
                       threshold: Annotated[Optional[float], typer.Option(
                           min=0, max=1, help="Cosine similarity; default PGRAG_DUPLICATE_THRESHOLD (0.95).")] = None,
                       limit: Annotated[int, typer.Option(min=1)] = 100) -> None:
    """Pairs of near-duplicate chunks in different documents (cosine similarity >= threshold)."""
    with knowledge_base() as kb:
        rows = kb.duplicates(collection=collection, threshold=threshold, limit=limit)
    _similarity_table(rows, ["similarity", "source_a", "chunk_a", "source_b", "chunk_b", "content_a"])


@app.command()
def outliers(collection: CollectionOption = None, k: Annotated[int, typer.Option("-k", min=1)] = 10) -> None:
    """Chunks far from all their nearest neighbours: junk such as boilerplate or mis-parsed pages."""
    with knowledge_base() as kb:
        rows = kb.outliers(collection=collection, k=k)
    _similarity_table(rows, ["neighbour_similarity", "source", "chunk_id", "content"])


def _similarity_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(*columns)
    for row in rows:
        table.add_row(*(f"{row[c]:.3f}" if isinstance(row[c], float) else
                        _excerpt(str(row[c])) if c.startswith("content") else str(row[c]) for c in columns))
    console.print(table if rows else "Nothing found.")


def _excerpt(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


@app.command()
def config() -> None:
    """Show the effective settings, including what the reranker and its blend weight resolve to here."""
    from pgrag.providers import Models
    from pgrag.providers.reranker import resolve_reranker_spec

    settings = Settings()
    values = settings.model_dump(mode="json")
    values["reranker"] = f"{settings.reranker} -> {resolve_reranker_spec(settings)}"
    weight = Models(settings).blend_weight
    values["rerank_weight"] = f"{settings.rerank_weight} -> {'cross-encoder alone' if weight is None else weight}"
    for key, resolved in zip(("dense_weight", "lexical_weight"), settings.fusion_weights):
        values[key] = f"{values[key]} -> {resolved}"
    if values.get("database_url"):
        values["database_url"] = "(set)"
    for key, value in values.items():
        console.print(f"[bold]{key}[/bold] = {value}", highlight=False)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations (alembic upgrade)."""
    _migrate("upgrade", revision)


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. base or -1.")]) -> None:
    """Revert migrations (alembic downgrade)."""
    _migrate("downgrade", revision)


def _migrate(direction: str, revision: str) -> None:
    from pgrag.db import embedded, engine

    embedded.install_signal_handlers()
    settings = Settings()
    db = engine.create_engine(settings)
    try:
        getattr(engine, direction)(db, revision)
    finally:
        engine.dispose(db, settings)
    console.print(f"Database {direction}d to {revision}.")


@db_app.command("sql")
def db_sql(query: Annotated[str, typer.Argument(help="One SQL statement; its rows are printed as a table.")],
           limit: Annotated[int, typer.Option(help="Rows to print at most.")] = 100) -> None:
    """Run one SQL statement and print its result as a table (see docs/sql.md for useful ones)."""
    with knowledge_base() as kb:
        columns, rows = kb.sql(query, limit=limit)
    if not columns:
        console.print("OK")
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(value) for value in row))
    console.print(table)


@db_app.command("psql")
def db_psql(args: Annotated[Optional[list[str]], typer.Argument(help="Extra psql arguments, e.g. -c 'SELECT 1'.")]
            = None) -> None:
    """Open psql on the database (the embedded server's own psql when DATABASE_URL is unset)."""
    import shutil

    from pgrag.db import embedded, engine

    embedded.install_signal_handlers()
    settings = Settings()
    db = engine.create_engine(settings)
    url = db.url.set(drivername="postgresql")
    psql = str(embedded.psql_path()) if not settings.database_url else (shutil.which("psql") or "")
    if not psql:
        errors.print("[red]Error:[/red] psql is not installed; install the PostgreSQL client.")
        raise typer.Exit(1)
    try:
        code = subprocess.call([psql, url.render_as_string(hide_password=False), *(args or [])])
    finally:
        engine.dispose(db, settings)
    raise typer.Exit(code)


def _parse_filter(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--filter must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("--filter must be a JSON object, e.g. '{\"type\": \"pdf\"}'")
    return value


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
