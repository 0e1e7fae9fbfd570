"""The answer chain (LCEL): retrieve → the passages' best sentences, numbered, in the prompt → chat model →
an answer whose every sentence cites a source, with the cited sources, grounding flags and timings."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig, RunnableGenerator, RunnableLambda, RunnablePassthrough

from pgrag.chains.citations import (
    ABSTENTION,
    adds_from_sources,
    citation_filter,
    extract_citations,
    is_abstention,
    support_note,
    uncited_sentences,
    unsupported_terms,
)
from pgrag.chains.context import format_context
from pgrag.chains.prompts import load_prompt
from pgrag.config import Settings
from pgrag.retrieval import best_similarity, is_weak, source_fields

OUTPUT_KEYS = ["question", "sources", "retrieval", "answer", "citations", "grounded", "abstained", "timings"]


def answer_prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [("system", load_prompt("answer_system.txt")), ("human", load_prompt("answer_human.txt"))]
    )


# A small model writes "The sources do not say." far more often when the sources do say than when they do not: on
# the Python manual set Qwen2.5 1.5B did so for 10 answerable questions and 1 unanswerable one, while the other
# unanswerable questions it reaches, it answers anyway (docs/eval/answers.md). So its abstention is not final: the
# answer is decoded again, begun with these words, which leaves the model no way to abstain at the start. So is an
# answer that only restates the question ("The argparse action turns an option into a flag. [1]"); there the second
# look follows it. A second look is kept only if it adds to the question something the sources contain
# (``adds_from_sources``); the support note still calls out invented names and numbers.
SECOND_LOOK = "According to the sources, "


@lru_cache(maxsize=32)
def citation_grammar(n_sources: int, opening: str = "") -> Any:
    """GBNF for llama.cpp: either the abstention sentence, or 1–3 sentences each ending with a valid citation;
    with an ``opening``, the sentences only, the first begun with it.

    Small instruction models follow citation instructions only most of the time; constrained decoding makes every
    sentence name an existing source, and makes "the sources do not say" one clear choice. Sentences are bounded
    (200 characters) so that an answer always closes its last citation within the token limit."""
    from llama_cpp import LlamaGrammar

    numbers = " | ".join(f'"{n}"' for n in range(1, n_sources + 1))
    answer = 'sentence (" " sentence){0,2}'
    root = f'"{opening}" {answer}' if opening else f'"{ABSTENTION}" | {answer}'
    return LlamaGrammar.from_string(
        f"root ::= {root}\n"
        # A period inside a sentence must be followed by a non-space ("os.walk", "3.11") or end the sentence right
        # before its citation ("… 128. [3]"): a ". " would start an uncited sentence.
        # Nor may a sentence begin with "(" or "#": small models copy the next source's "(label)" or a heading
        # after a citation ("… [1] (tomllib > Examples) ## Examples Parsing a TOML …").
        'sentence ::= [^\\[\\]\\n. (#] char{0,200} "."? " [" cite "]" "."?\n'
        'char ::= [^\\[\\]\\n.] | "." [^\\[\\]\\n .]\n'
        f'cite ::= num (", " num)?\nnum ::= {numbers}\n',
        verbose=False,
    )


@dataclass
class _FirstAnswer:
    """One answer as the model writes it under the citation grammar: passes text on as it comes, holding back what
    may still become the abstention, and decides whether a second look is needed and what of it follows."""

    question: str
    sources: list[Document]
    text: str = ""
    held: str | None = ""  # None once the answer can no longer be the abstention

    def feed(self, piece: str) -> str:
        """The text to pass on now that ``piece`` has arrived."""
        self.text += piece
        if self.held is None:
            return piece
        self.held += piece
        if ABSTENTION.startswith(self.held):
            return ""
        passed, self.held = self.held, None
        return passed

    def needs_second_look(self) -> bool:
        """The abstention, or an answer that restates the question: nothing in it comes from the sources, and
        nothing is missing from them either (an invented value is the support note's to call out)."""
        return self.text == ABSTENTION or not (self._adds(self.text)
                                               or unsupported_terms(self.text, self.question, self.sources))

    def finish(self, second_answer: str) -> str:
        """What is left to pass on: text still held back, then the second look if it adds to the question from the
        sources, in place of the abstention or after an answer that restates the question."""
        if self.text == ABSTENTION:
            return second_answer if self._adds(second_answer) else ABSTENTION
        rest = self.held or ""
        return rest + " " + second_answer if second_answer and self._adds(second_answer) else rest

    def _adds(self, answer: str) -> bool:
        return adds_from_sources(answer.removeprefix(SECOND_LOOK), self.question, self.sources)


def _grammar_answer(llm: BaseChatModel, question: str, sources: list[Document]) -> RunnableGenerator:
    """A streaming step (prompt → str) for llama.cpp models: the answer under the citation grammar, and a second
    look, decoded from ``SECOND_LOOK``, when that answer is the abstention (the second look replaces it) or only
    restates the question (the second look follows it). A second look is passed on whole, and only if what follows
    its opening adds to the question from the sources. Text that may still become the abstention is held back (a
    few tokens), so the user never sees an abstention that is then replaced. The second decoding re-reads none of
    the prompt: llama.cpp keeps the prefix it shares with the previous call."""
    first = llm.bind(grammar=citation_grammar(len(sources)))
    second = llm.bind(grammar=citation_grammar(len(sources), SECOND_LOOK))

    def pieces(prompts: Iterator[PromptValue]) -> Iterator[str]:
        for prompt in prompts:
            answer = _FirstAnswer(question, sources)
            for chunk in first.stream(prompt):
                if passed := answer.feed(str(chunk.content)):
                    yield passed
            second_answer = str(second.invoke(prompt).content) if answer.needs_second_look() else ""
            if rest := answer.finish(second_answer):
                yield rest

    async def apieces(prompts: AsyncIterator[PromptValue]) -> AsyncIterator[str]:
        async for prompt in prompts:
            answer = _FirstAnswer(question, sources)
            async for chunk in first.astream(prompt):
                if passed := answer.feed(str(chunk.content)):
                    yield passed
            second_answer = str((await second.ainvoke(prompt)).content) if answer.needs_second_look() else ""
            if rest := answer.finish(second_answer):
                yield rest

    return RunnableGenerator(pieces, apieces, name="grammar_answer")


def _model_for(llm: BaseChatModel, question: str, sources: list[Document], on_piece: Callable[[], None]
               ) -> RunnableGenerator:
    """The chat model as a step from the prompt to the answer's text, streamed even when the chain is invoked
    (``/rag/invoke``, ``KnowledgeBase.ask``), so that ``on_piece`` sees each piece as it comes: the timings' first
    token and tokens/s are the model's in either case."""
    from langchain_community.chat_models import ChatLlamaCpp

    model = _grammar_answer(llm, question, sources) if isinstance(llm, ChatLlamaCpp) else llm | StrOutputParser()

    def pieces(prompts: Iterator[PromptValue], config: RunnableConfig) -> Iterator[str]:
        for prompt in prompts:
            for piece in model.stream(prompt, config):
                on_piece()
                yield piece

    async def apieces(prompts: AsyncIterator[PromptValue], config: RunnableConfig) -> AsyncIterator[str]:
        async for prompt in prompts:
            async for piece in model.astream(prompt, config):
                on_piece()
                yield piece

    return RunnableGenerator(pieces, apieces, name="chat_model")


# The fixed part of the prompt (system prompt with its examples, labels, the question) in tokens, and a cautious
# characters-per-token for English and code; together they keep any k within the model's context window.
PROMPT_TOKENS = 600
CHARS_PER_TOKEN = 3


def source_budgets(settings: Settings, n_sources: int) -> list[int]:
    """Characters of each source in the prompt, best first: ``answer_chars_best_source`` for the best,
    ``answer_chars_per_source`` for the others, all cut in proportion when they would not fit the context window."""
    wanted = [settings.answer_chars_best_source] + [settings.answer_chars_per_source] * (n_sources - 1)
    room = (settings.context_window - settings.max_tokens - PROMPT_TOKENS) * CHARS_PER_TOKEN
    scale = min(1.0, room / max(sum(wanted), 1))
    return [max(80, int(chars * scale)) for chars in wanted[:n_sources]]


# Passages always given to the model, however far below the best: a small model often finds the answer in the
# second or third (docs/eval/answers.md).
ALWAYS_GIVEN = 3


def close_to_best(sources: list[Document], settings: Settings) -> list[Document]:
    """The passages worth their prompt tokens: the first ``ALWAYS_GIVEN``, then those whose fused score is at least
    ``answer_score_share`` of the best one's. Only min-max fused scores say how far a passage falls behind the best;
    reciprocal-rank scores follow from ranks alone, so under RRF fusion all of them are given."""
    scores = [doc.metadata.get("scores", {}).get("fused") for doc in sources]
    if settings.fusion != "minmax" or None in scores:
        return sources
    floor = settings.answer_score_share * max(scores, default=0.0)
    return [doc for rank, (doc, score) in enumerate(zip(sources, scores)) if rank < ALWAYS_GIVEN or score >= floor]


def no_answer(sources: list[Any], health: dict[str, Any]) -> str:
    """What ``ask`` says instead of calling the model when retrieval is weak, and why."""
    if not sources:
        return "The knowledge base has no passages for this question; ingest documents first."
    if not health["unseen_words"]:
        return (f"The knowledge base has no good answer to this question: its best passage has similarity "
                f"{health['best_similarity']:.2f}, below the threshold {health['threshold']:.2f} "
                "(PGRAG_MIN_RELEVANCE).")
    named = ", ".join(repr(word) for word in health["unseen_words"])
    return (f"The knowledge base does not say: no passage in it mentions {named} "
            "(PGRAG_ABSTAIN_ON_UNSEEN_WORDS=false lets the model answer anyway).")


@dataclass
class _Clock:
    """Times one answer: retrieval, first token, total, and generated pieces (one per token when streaming)."""

    started: float = field(default_factory=time.perf_counter)
    retrieved: float | None = None
    first_token: float | None = None
    pieces: int = 0

    def piece(self) -> None:
        self.pieces += 1
        if self.first_token is None:
            self.first_token = time.perf_counter()

    def report(self) -> dict[str, float | int | None]:
        now = time.perf_counter()
        generating = now - self.first_token if self.first_token else None
        return {
            "retrieval_s": round(self.retrieved - self.started, 3) if self.retrieved else None,
            "first_token_s": round(self.first_token - self.started, 3) if self.first_token else None,
            "total_s": round(now - self.started, 3),
            "tokens": self.pieces,
            "tokens_per_s": round(self.pieces / generating, 1) if generating and self.pieces > 1 else None,
        }


def build_answer_chain(retriever: BaseRetriever, llm: BaseChatModel, settings: Settings,
                       unseen_words: Callable[[str], list[str]] = lambda question: []) -> Runnable:
    """Input ``{"question": str}``; output the ``OUTPUT_KEYS``. Streams the answer. When retrieval is weak (the
    best passage is far from the question, or the question names words the knowledge base never contains:
    ``unseen_words``) the model is not called: an invented answer is worse than none."""
    prompt = answer_prompt()

    def retrieval_health(inputs: dict[str, Any]) -> dict[str, Any]:
        sources = inputs["sources"]
        weak = is_weak(sources, settings.min_relevance)
        unseen = unseen_words(inputs["question"]) if not weak and settings.abstain_on_unseen_words else []
        inputs["clock"].retrieved = time.perf_counter()
        return {"best_similarity": best_similarity(sources), "threshold": settings.min_relevance,
                "unseen_words": unseen, "weak": weak or bool(unseen)}

    def generate(inputs: dict[str, Any]) -> Runnable | str:
        question, sources, clock = inputs["question"], inputs["sources"], inputs["clock"]
        if inputs["retrieval"]["weak"]:
            return no_answer(sources, inputs["retrieval"])
        context = format_context(question, sources, source_budgets(settings, len(sources)))
        return (RunnableLambda(lambda _: {"question": question, "context": context}) | prompt
                | _model_for(llm, question, sources, clock.piece) | citation_filter(question, sources)
                | support_note(question, sources))

    def grounding(inputs: dict[str, Any]) -> dict[str, Any]:
        answer, sources = inputs["answer"], inputs["sources"]
        abstained = inputs["retrieval"]["weak"] or is_abstention(answer)
        citations = [] if abstained else extract_citations(answer, sources)
        return {"citations": citations, "abstained": abstained,
                "grounded": abstained or (bool(citations) and not uncited_sentences(answer)),
                "timings": inputs["clock"].report()}

    def output(chunk: dict[str, Any]) -> dict[str, Any]:
        flat = {**chunk, **chunk.get("grounding", {})}
        return {key: value for key, value in flat.items() if key in OUTPUT_KEYS}

    return (
        RunnablePassthrough.assign(clock=lambda _: _Clock())
        .assign(sources=(lambda x: x["question"]) | retriever | (lambda found: close_to_best(found, settings)))
        .assign(retrieval=RunnableLambda(retrieval_health))
        .assign(answer=RunnableLambda(generate))
        .assign(grounding=RunnableLambda(grounding))
        | map_chunks(output)
    ).with_config(run_name="pgrag_answer")


def map_chunks(function: Callable[[dict[str, Any]], dict[str, Any]]) -> RunnableGenerator:
    """A step applying ``function`` to each streamed chunk, sync and async, so a stream stays a stream."""

    def each(chunks: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        yield from map(function, chunks)

    async def aeach(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        async for chunk in chunks:
            yield function(chunk)

    return RunnableGenerator(each, aeach)


def collect(chunks: Iterable[dict[str, Any]], on_answer: Callable[[str], None] = lambda piece: None) -> dict[str, Any]:
    """The answer chain's output from its streamed chunks, passing each piece of the answer on as it comes."""
    result: dict[str, Any] = {"answer": ""}
    for chunk in chunks:
        for key, value in chunk.items():
            if key == "answer":
                on_answer(value)
                result["answer"] += value
            else:
                result[key] = value
    return result


def json_ready(output: dict[str, Any]) -> dict[str, Any]:
    """The chain's output (or one streamed chunk of it) as plain data: sources as objects with their scores."""
    if "sources" not in output:
        return output
    return {**output, "sources": [source_fields(doc) for doc in output["sources"]]}
