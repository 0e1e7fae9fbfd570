"""`pgrag eval-answers`: answer quality and speed per chat model on a questions file.

Each line of the file is a JSON object: ``question``; for an answerable question ``answer`` (a regex the right
answer must match, case-insensitively) and ``gold`` (the source page(s) that state it: paths relative to the
ingested folder, matched against the end of each stored source); or ``"answerable": false``.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgrag.chains.answer import collect
from pgrag.errors import InvalidInput

if TYPE_CHECKING:
    from pgrag.kb import KnowledgeBase


@dataclass(frozen=True)
class Case:
    id: str
    question: str
    answerable: bool
    key: re.Pattern[str] | None
    gold: tuple[str, ...]

    def is_gold(self, source: str | None) -> bool:
        normalised = (source or "").replace("\\", "/")
        return any(normalised == g or normalised.endswith("/" + g.lstrip("/")) for g in self.gold)


def load_cases(path: Path) -> list[Case]:
    cases = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answerable = row.get("answerable", True)
            cases.append(Case(str(row.get("id", number)), row["question"], answerable,
                              re.compile(row["answer"], re.IGNORECASE) if answerable else None,
                              tuple(row.get("gold", ())) if answerable else ()))
        except (KeyError, ValueError, re.error) as exc:
            raise InvalidInput(f"{path}, line {number}: {exc}. Each line needs a question, and an answer regex "
                               'with gold sources or "answerable": false.') from None
    return cases


@dataclass
class CaseResult:
    id: str
    answerable: bool
    answer: str
    correct: bool
    abstained: bool
    grounded: bool
    cited: int
    cited_gold: int
    gold_retrieved: bool
    timings: dict[str, Any]


@dataclass
class ModelReport:
    chat_model: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    cases: list[CaseResult] = field(default_factory=list)


def judge(case: Case, result: dict[str, Any]) -> CaseResult:
    answer, citations = result["answer"], result["citations"]
    cited_gold = sum(case.is_gold(c["source"]) for c in citations)
    return CaseResult(
        case.id, case.answerable, answer,
        correct=bool(case.answerable and not result["abstained"] and case.key.search(answer) and citations),
        abstained=result["abstained"], grounded=result["grounded"], cited=len(citations), cited_gold=cited_gold,
        gold_retrieved=any(case.is_gold(doc.metadata.get("source")) for doc in result["sources"]),
        timings=result["timings"],
    )


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))], 2)


def summarise(results: list[CaseResult]) -> dict[str, float | None]:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    cited = sum(r.cited for r in answerable)
    generated = [r.timings for r in results if r.timings.get("first_token_s") is not None]

    def rate(rows: list[CaseResult], test: Callable[[CaseResult], bool]) -> float | None:
        return round(sum(map(test, rows)) / len(rows), 3) if rows else None

    return {
        "correct": rate(answerable, lambda r: r.correct),
        "citation_precision": round(sum(r.cited_gold for r in answerable) / cited, 3) if cited else None,
        "abstained_unanswerable": rate(unanswerable, lambda r: r.abstained),
        "abstained_answerable": rate(answerable, lambda r: r.abstained),
        "grounded": rate(results, lambda r: r.grounded),
        "gold_retrieved": rate(answerable, lambda r: r.gold_retrieved),
        "first_token_p50_s": _quantile([t["first_token_s"] for t in generated], 0.5),
        "first_token_p95_s": _quantile([t["first_token_s"] for t in generated], 0.95),
        "total_p50_s": _quantile([r.timings["total_s"] for r in results], 0.5),
        "total_p95_s": _quantile([r.timings["total_s"] for r in results], 0.95),
        "tokens_per_s": round(statistics.median(t["tokens_per_s"] for t in generated if t["tokens_per_s"]), 1)
        if any(t["tokens_per_s"] for t in generated) else None,
        "questions": len(results),
    }


def evaluate_answers(kb: KnowledgeBase, cases: list[Case], collection: str,
                     on_case: Callable[[int, CaseResult], None] = lambda done, result: None) -> ModelReport:
    """Ask every question through the answer chain as ``ask`` does; the model is loaded (and warmed with one
    question) before timing starts, so the figures are per answer, not per process."""
    chain = kb.answer_chain(collection=collection)
    chain.invoke({"question": "What is this about?"})  # loads the model and caches the prompt's fixed prefix
    report = ModelReport(kb.settings.chat_model)
    for done, case in enumerate(cases, 1):
        report.cases.append(judge(case, collect(chain.stream({"question": case.question}))))
        on_case(done, report.cases[-1])
    report.metrics = summarise(report.cases)
    return report


def as_json(reports: list[ModelReport], **context: Any) -> str:
    return json.dumps({**context, "models": [asdict(r) for r in reports]}, indent=2, default=str) + "\n"
