"""Grounded output: citation numbers that name no source are removed (also while streaming), the cited sources
are listed, an answer with an uncited sentence is flagged, names and numbers that no source contains are called
out, and an answer saying the sources lack the answer is recognised as an abstention."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from functools import lru_cache
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import RunnableGenerator

from pgrag.chains.context import terms

# What the prompt and the grammar ask a model to write when the sources do not answer the question.
ABSTENTION = "The sources do not say."
_ABSTAINS = re.compile(
    r"sources? do(?:es)? not say|\b(?:sources?|context|documents?|passages?|knowledge base)\b[^.,]{0,40}"
    r"\b(?:do(?:es)?n['o]?t|not|no)\b[^.]{0,25}\b(?:say|mention|contain|provide|include|specify|state|cover|"
    r"answer|information)|\bno information\b|\bnot (?:mentioned|specified|stated|provided) in\b",
    re.IGNORECASE,
)
_CITATION = re.compile(r"\s?\[(\d+(?:\s*,\s*\d+)*)\]")
# A sentence ends after a citation, or after the period, ? or ! of a word, a percentage or a closing quote; a citation
# after a full stop ("… 128. [3]") belongs to the sentence before it. "@?" and "?|" are PostgreSQL operators
# mid-sentence, as the citation grammar lets them be.
_SENTENCE = re.compile(r"(?:(?<=[\w%)\]\"'`”][.!?])|(?<=\]))\s+(?=[^\s\[])")


def supporting_sources(claim: str, question: str, sources: list[Document]) -> list[int]:
    """How much of what ``claim`` adds to the question each source holds: its words, numbers and code names, and
    twice each quoted literal (`%j`, 'exist_ok=True')."""
    said, literals = _terms(claim) - _terms(question), {x for x in _literals(claim) if x not in question}
    return [len(said & _terms(doc.page_content)) + 2 * sum(x in doc.page_content for x in literals)
            for doc in sources]


def repoint(numbers: list[int], support: list[int]) -> list[int]:
    """Valid citation numbers, each one whose source holds less than half as much of the claim as the source that
    holds most moved to that source (the better ranked on a tie). The small model takes the right fact but often
    cites a neighbour of its passage, most of all when the passage is long: citation precision 0.60 -> 0.72 moving
    those that hold nothing, then 0.670 -> 0.690 (Python set) and 0.778 -> 0.833 (PostgreSQL set) moving those
    that hold under half (docs/eval/answers.md)."""
    best = max(range(len(support)), key=lambda i: (support[i], -i), default=-1)
    moved = [best + 1 if 2 * support[n - 1] < support[best] else n for n in numbers if 1 <= n <= len(support)]
    return list(dict.fromkeys(moved))


def extract_citations(answer: str, sources: list[Document]) -> list[dict[str, Any]]:
    """The sources the answer cites, in order of first citation; numbers outside the list are ignored."""
    numbers: list[int] = []
    for match in _CITATION.finditer(answer):
        for number in (int(n) for n in match.group(1).split(",")):
            if 1 <= number <= len(sources) and number not in numbers:
                numbers.append(number)
    return [
        {"number": n, "source": sources[n - 1].metadata.get("source"), "chunk_id": sources[n - 1].metadata.get("chunk_id")}
        for n in numbers
    ]


def adds_from_sources(answer: str, question: str, sources: list[Document]) -> bool:
    """Whether the answer states a word, number, name or quoted literal (`%j`, '/') that the question does not
    and a source does. An answer that only restates the question ("-3**2 evaluates to -9") or adds only what no
    source says ("you cannot bring a bicycle") fails. Any source counts, not only the cited ones: the small model
    often cites a neighbour of the passage it took the answer from."""
    text, said = " ".join(doc.page_content for doc in sources), _CITATION.sub(" ", answer)
    literals = {literal for literal in _literals(said) if literal not in question}
    return bool((_terms(said) - _terms(question)) & _terms(text)) or any(literal in text for literal in literals)


@lru_cache(maxsize=256)  # every citation of an answer compares its claim with each source: read each text once
def _terms(text: str) -> frozenset[str]:
    return frozenset(terms(text) | set(_stated_numbers(text)) | {name.lower() for name in code_names(text)})


_LITERAL = re.compile(r"`([^`]+)`|'([^'\s]+)'|\"([^\"\s]+)\"")


def _literals(text: str) -> set[str]:
    return {"".join(groups) for groups in _LITERAL.findall(text)}


def is_abstention(answer: str) -> bool:
    return bool(_ABSTAINS.search(answer))


def uncited_sentences(answer: str) -> list[str]:
    return [s for s in _SENTENCE.split(answer.strip()) if s.strip() and not _CITATION.search(s)]


class _Filter:
    """Streams text on, holding back only an unfinished ``[...]`` until it closes, so an invalid citation is
    removed, and a misplaced one repointed (``repoint``), before anyone sees it."""

    def __init__(self, question: str, sources: list[Document]) -> None:
        self.question, self.sources = question, sources
        self.held = self.claim = ""  # the unfinished citation; the text since the last citation

    def feed(self, piece: str) -> str:
        text = self.held + piece
        start = text.rfind("[")
        if start == -1 or "]" in text[start:] or len(text) - start > 12:
            start = len(text)
        while start > 0 and text[start - 1] == " ":  # a space may belong to a citation about to come
            start -= 1
        self.held, text = text[start:], text[:start]
        return self._cite(text)

    def flush(self) -> str:
        text, self.held = self.held, ""
        return self._cite(text)

    def _cite(self, text: str) -> str:
        out, end = [], 0
        for match in _CITATION.finditer(text):
            claim, self.claim = self.claim + text[end: match.start()], ""
            numbers = repoint([int(n) for n in match.group(1).split(",")],
                              supporting_sources(claim, self.question, self.sources))
            opening = match.group(0)[: match.start(1) - match.start(0)]  # " [" or "["
            out += [text[end: match.start()], f"{opening}{', '.join(map(str, numbers))}]" if numbers else ""]
            end = match.end()
        self.claim += text[end:]
        return "".join(out) + text[end:]


def _stream_step(make: Callable[[], Any], name: str) -> RunnableGenerator:
    """A streaming str → str step, sync and async, from a state with ``feed(piece) -> str`` and ``flush() -> str``."""

    def pieces(chunks: Iterator[str]) -> Iterator[str]:
        state = make()
        for chunk in chunks:
            if out := state.feed(chunk):
                yield out
        if rest := state.flush():
            yield rest

    async def apieces(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
        state = make()
        async for chunk in chunks:
            if out := state.feed(chunk):
                yield out
        if rest := state.flush():
            yield rest

    return RunnableGenerator(pieces, apieces, name=name)


def citation_filter(question: str, sources: list[Document]) -> RunnableGenerator:
    """A streaming step (str → str) that removes citation numbers that name no source and repoints those whose
    source holds too little of the sentence (``repoint``)."""
    return _stream_step(lambda: _Filter(question, sources), "citation_filter")


# A small model that does not find the answer in its sources tends to invent one around a specific-looking value:
# a port, a size, a function name. Numbers and code-shaped names (snake_case, dunder, CamelCase) are looked up;
# plain words are not (paraphrase is what a model should do). A number may come from the question ("since 3.8");
# a name must come from a source: one that only the question names means the sources are about something else
# (a name that no chunk of the collection holds at all, like Django's CSRF_TRUSTED_ORIGINS in the Python manual,
# is caught before the model runs: Retrieval.unseen_words). On the Python manual set this turns 4 of the default
# model's 7 invented answers to unanswerable questions into "the sources do not say", and 1 of its 61 right
# answers, one its sources did not back (docs/eval/answers.md).
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CODE_SHAPED = re.compile(r"\w_|_\w|[a-z][A-Z]|[A-Z]{2}[a-z]")
_NUMBER_WORDS = dict(zip(
    "zero one two three four five six seven eight nine ten eleven twelve".split(), map(str, range(13))))


def _stated_numbers(text: str) -> list[str]:
    """The numbers in ``text``, in order, once each, without thousands separators."""
    return list(dict.fromkeys(n.replace(",", "") for n in _NUMBER.findall(text)))


def _known_numbers(text: str) -> set[str]:
    words = {word.lower() for word in _IDENTIFIER.findall(text)}
    return {*_stated_numbers(text), *(n for w, n in _NUMBER_WORDS.items() if w in words)}


def code_names(text: str) -> list[str]:
    """The code-shaped names in ``text`` (snake_case, dunder, CamelCase), in order, once each."""
    return [name for name in dict.fromkeys(_IDENTIFIER.findall(text)) if _CODE_SHAPED.search(name)]


# A proper name and the number that follows it: "PEP 695", "RFC 9110", "CPython 3.13" (a capitalised word that does
# not start a sentence, so "Since 3.10, ..." is no name).
_NUMBERED_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*[ -]\d+(?:\.\d+)*\b")


def numbered_names(text: str) -> list[str]:
    """The numbered names in ``text`` ("PEP 695", "Python 3.12"), in order, once each."""
    found = (match for match in _NUMBERED_NAME.finditer(text)
             if text[: match.start()].rstrip()[-1:] not in ("", ".", "?", "!", ":"))
    return list(dict.fromkeys(match.group() for match in found))


def _states_specifics(answer: str) -> bool:
    """Whether the answer (citations aside) states a number or a code-shaped name."""
    claim = _CITATION.sub(" ", answer)
    return bool(_NUMBER.search(claim) or code_names(claim))


def _known_terms(question: str, sources: list[Document]) -> tuple[set[str], set[str]]:
    """The numbers that the question or a source contains, and the (lower-cased) names that a source contains."""
    text = " ".join(doc.page_content for doc in sources)
    return _known_numbers(f"{question} {text}"), {name.lower() for name in _IDENTIFIER.findall(text)}


def _unsupported(answer: str, known: tuple[set[str], set[str]]) -> list[str]:
    claim, (numbers, names) = _CITATION.sub(" ", answer), known
    return ([n for n in _stated_numbers(claim) if n not in numbers]
            + [name for name in code_names(claim) if name.lower() not in names])


def unsupported_terms(answer: str, question: str, sources: list[Document]) -> list[str]:
    """Numbers in the answer that neither the question nor any source contains, and code-shaped names that no
    source contains."""
    return _unsupported(answer, _known_terms(question, sources))


class _SupportNote:
    """Streams the answer on unchanged and, once it is complete, adds a note naming what no source contains.
    When every sentence that states a number or a name states one that no source contains, the answer is
    unsupported as a whole and the note says that the sources do not say it (so the answer counts as an
    abstention); otherwise the note only names the unsupported terms."""

    def __init__(self, question: str, sources: list[Document]) -> None:
        self.question, self.sources, self.text = question, sources, ""

    def feed(self, piece: str) -> str:
        self.text += piece
        return piece

    def flush(self) -> str:
        known = _known_terms(self.question, self.sources)  # read once, looked up per sentence
        terms = _unsupported(self.text, known)
        if not terms or is_abstention(self.text):
            return ""
        named = ", ".join(terms)
        claims = [s for s in _SENTENCE.split(self.text.strip()) if _states_specifics(s)]
        if all(_unsupported(s, known) for s in claims):
            return f"\n(Not in any source: {named}. {ABSTENTION[:-1]} this.)"
        return f"\n(Not in any source: {named}.)"


def support_note(question: str, sources: list[Document]) -> RunnableGenerator:
    """A streaming step (str → str) that passes the answer on and then notes the numbers and names it states that
    no source contains (``_SupportNote``)."""
    return _stream_step(lambda: _SupportNote(question, sources), "support_note")
