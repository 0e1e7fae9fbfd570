"""The answer chain (LCEL): retrieve → numbered sources in the prompt → chat model → answer with citations."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

from pgrag.chains.prompts import load_prompt
from pgrag.retrieval import best_similarity, is_weak

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def answer_prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [("system", load_prompt("answer_system.txt")), ("human", load_prompt("answer_human.txt"))]
    )


def format_sources(sources: list[Document], max_chars: int = 700) -> str:
    return "\n".join(
        f"[{number}] ({Path(doc.metadata.get('source', '?')).name}) {' '.join(doc.page_content.split())[:max_chars]}"
        for number, doc in enumerate(sources, 1)
    )


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


@lru_cache(maxsize=32)
def citation_grammar(n_sources: int) -> Any:
    """GBNF that makes a small local model write 1–3 short sentences, each ending with a valid citation.

    Tiny instruction models (the offline default is 135M parameters) ignore citation instructions; constrained
    decoding through llama.cpp is the reliable way to get answers whose every sentence names its source.
    """
    from llama_cpp import LlamaGrammar

    numbers = " | ".join(f'"{n}"' for n in range(1, n_sources + 1))
    return LlamaGrammar.from_string(
        "root ::= sentence (\" \" sentence){0,2}\n"
        "sentence ::= [A-Za-z] [^\\[\\]\\n.]{0,160} \" [\" cite \"].\"\n"
        f"cite ::= {numbers}\n",
        verbose=False,
    )


def _model_for(llm: BaseChatModel, n_sources: int) -> Runnable:
    from langchain_community.chat_models import ChatLlamaCpp

    if isinstance(llm, ChatLlamaCpp) and n_sources:
        return llm.bind(grammar=citation_grammar(n_sources))
    return llm


def no_answer(sources: list[Document], min_relevance: float) -> str:
    if not sources:
        return "The knowledge base has no passages for this question; ingest documents first."
    return (f"The knowledge base has no good answer to this question: its best passage has similarity "
            f"{best_similarity(sources):.2f}, below the threshold {min_relevance:.2f} (PGRAG_MIN_RELEVANCE).")


def build_answer_chain(retriever: BaseRetriever, llm: BaseChatModel, min_relevance: float) -> Runnable:
    """Input ``{"question": str}``; output ``{"question", "sources", "retrieval", "answer", "citations"}``.
    Streams the answer. When retrieval is weak the model is not called: an invented answer is worse than none."""
    prompt = answer_prompt()

    def retrieval_health(inputs: dict[str, Any]) -> dict[str, Any]:
        sources = inputs["sources"]
        return {"best_similarity": best_similarity(sources), "threshold": min_relevance,
                "weak": is_weak(sources, min_relevance)}

    def generate(inputs: dict[str, Any]) -> Runnable | str:
        sources = inputs["sources"]
        if inputs["retrieval"]["weak"]:
            return no_answer(sources, min_relevance)
        prompt_inputs = {"question": inputs["question"], "context": format_sources(sources)}
        return RunnableLambda(lambda _: prompt_inputs) | prompt | _model_for(llm, len(sources)) | StrOutputParser()

    return (
        RunnablePassthrough.assign(sources=(lambda x: x["question"]) | retriever)
        .assign(retrieval=RunnableLambda(retrieval_health))
        .assign(answer=RunnableLambda(generate))
        .assign(citations=RunnableLambda(lambda x: extract_citations(x["answer"], x["sources"])))
    ).with_config(run_name="pgrag_answer")
