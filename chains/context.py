"""What of the retrieved passages goes into the prompt: a small model on 2 cores reads every prompt token (about
40-70 tokens/s for Qwen2.5 1.5B), so each source is cut to the sentences that share the most words with the
question, in their original order, within a character budget (the best source's larger than the others').
Measured in docs/eval/answers.md."""

from __future__ import annotations

import math
import re
from collections import Counter

from langchain_core.documents import Document

_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=[A-Z0-9`\"'(\[*>-])|\n+")
_BLOCK_START = re.compile(r"[#>|*+-]|\d+[.)]\s|```")  # a line that starts a list item, quote, table row, fence
_DEFINITION = re.compile(r":\s+")  # a markdown definition (": what the term above means"), as HTML's <dd> is read
_FENCE = re.compile(r"`{3,}\w*")
_INLINE_CODE = re.compile(r"(`+)([^`\n]+?)\1")
_FOOTNOTE = re.compile(r"(?:(?<=[\w.,;:)”\"'])\s|^)\[\d{1,3}\](?=[\s.,;:]|$)")  # "calendar. [3] The", not a[0]
_TABLE_RULE = re.compile(r"\|?(?:\s*:?-{3,}:?\s*\|)+")  # a markdown table's "| --- | --- |" row
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]+")
_STOP = frozenset(
    "the and for are but not you all any can her was one our out has have had how its may new now see two way who "
    "did does doing done get got use used uses using what when where which while why with would could should "
    "this that these those there their they them then than into onto from about also been being each other some "
    "such only very just over under more most much many your yours will shall into upon is it of to in on a an "
    "be do if or as by at me my we he she no so up".split()
)


def terms(text: str) -> set[str]:
    """Content words, crudely stemmed (first 6 letters), so 'replaces' meets 'replace'."""
    return {word.lower()[:6] for word in _WORD.findall(text) if word.lower() not in _STOP and len(word) > 2}


def unwrap_lines(text: str) -> str:
    """Lines joined back into the paragraphs they were wrapped from, spaces collapsed. Documents keep their
    authors' hard line breaks (HTML and Markdown sources wrapped at 80 columns, a table cell per line), which would
    cut sentences in half and part a function's name from what is said about it ("os.cpu_count()" / "Return the
    number of CPUs …"). A line goes on from the one before unless that one ends a sentence or is a heading, or it
    starts a block: a list item, quote, table row or code fence. A definition goes on from its term after a dash
    ("timeit.timeit(…, number=1000000) — Create a Timer …"), since a colon there would end the sentence."""
    lines: list[str] = []
    for line in (" ".join(raw.split()) for raw in text.split("\n")):
        previous = lines[-1] if lines else ""
        definition = _DEFINITION.match(line)
        if definition and previous:
            lines[-1] = f"{previous} — {line[definition.end():]}"
        elif line and previous and previous[-1] not in ".!?:;" and not previous.startswith("#") \
                and not _BLOCK_START.match(line):
            lines[-1] = f"{previous} {line}"
        else:
            lines.append(line)
    return "\n".join(lines)


def without_markup(text: str) -> str:
    """A sentence as plain words for the prompt. Code fences, inline-code backticks and a table's rule row cost the
    model prompt tokens (backticks 5 % of them on the docs set) and tell it nothing the names do not; a fence left
    in a joined sentence also paired the wrong backticks ("`` (Contributed by …) … os.makedirs()` functionality").
    A footnote marker ("… calendar. [3] The ISO year …") would read as a citation of source 3."""
    text = _INLINE_CODE.sub(r"\2", _FENCE.sub(" ", text))
    return " ".join(_TABLE_RULE.sub(" ", _FOOTNOTE.sub("", text)).split())


def split_sentences(text: str) -> list[str]:
    sentences = (without_markup(s) for s in _SENTENCE_END.split(unwrap_lines(text)) if s)
    return [s for s in sentences if s]


def source_label(doc: Document) -> str:
    """Where a passage comes from, as the model sees it: the page title and heading path, short."""
    title = str(doc.metadata.get("title") or "").split(" — ")[0].strip()
    headings = str(doc.metadata.get("headings") or "").strip()
    label = " > ".join(part for part in (title, headings.split(" > ")[-1] if headings else "") if part)
    return without_markup(label)[:90]


def excerpt(question: str, sentences: list[str], budget: int, weights: dict[str, float]) -> str:
    """The passage's sentences that bear most on the question, in order, within ``budget`` characters; gaps
    between kept sentences are marked with an ellipsis. A passage that fits the budget is kept whole; from a longer
    one, sentences that share no word with the question are left out even where the budget has room, so a passage
    that barely bears on the question costs few prompt tokens."""
    sentences = list(sentences)  # a copy: the best sentence may be cut to the budget below
    if sum(len(s) + 1 for s in sentences) <= budget:
        return " ".join(sentences)
    wanted = terms(question)
    scores = [sum(weights.get(term, 0.0) for term in terms(s) & wanted) for s in sentences]
    chosen: set[int] = set()
    used = 0
    for index in sorted(range(len(sentences)), key=lambda i: (-scores[i], i)):
        if scores[index] <= 0 and chosen:
            break
        sentence = sentences[index]
        if used + len(sentence) + 2 > budget:
            if not chosen:  # the best sentence alone is too long: keep its start
                chosen.add(index)
                sentences[index] = sentence[: budget - 1] + "…"
                break
            continue
        chosen.add(index)
        used += len(sentence) + 2
    out, previous = [], None
    for index in sorted(chosen):
        if previous is not None and index != previous + 1:
            out.append("…")
        out.append(sentences[index])
        previous = index
    return " ".join(out)


def format_context(question: str, sources: list[Document], budgets: list[int]) -> str:
    """Numbered sources for the prompt: ``[n] (label) excerpt``, numbered by rank but listed best last, next to
    the question that follows them: the small model reads the nearest passage most closely (correct and cited
    0.61 → 0.68, docs/eval/answers.md). ``budgets`` gives each source's characters, best first, so the best passage
    can go in (nearly) whole. Rare question words weigh more (idf over the retrieved sentences), so the sentence
    naming the specific thing asked about wins over generic ones."""
    sentences = [split_sentences(doc.page_content) for doc in sources]
    sentence_terms = [terms(s) for found in sentences for s in found]
    counts = Counter(term for found in sentence_terms for term in found)
    n = max(len(sentence_terms), 1)
    weights = {term: math.log(1 + n / count) for term, count in counts.items()}
    return "\n".join(
        f"[{number}] ({source_label(doc)}) {excerpt(question, found, budget, weights)}"
        for number, (doc, found, budget) in reversed(list(enumerate(zip(sources, sentences, budgets), 1)))
    )
