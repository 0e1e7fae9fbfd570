"""LLM query expansion (multi-query rewrites, HyDE) and the fusion of several result lists."""

from __future__ import annotations

import re
from dataclasses import replace

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from pgrag.db.search import Hit
from pgrag.chains.prompts import load_prompt


def rewrite_queries(llm: BaseChatModel, question: str, n: int) -> list[str]:
    """Up to ``n`` alternative phrasings of the question, written by the chat model."""
    chain = ChatPromptTemplate.from_messages([("human", load_prompt("multi_query.txt"))]) | llm | StrOutputParser()
    lines = (re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip() for line in chain.invoke(
        {"question": question, "n": n}).splitlines())
    rewrites = [line for line in lines if line and line.lower() != question.lower()]
    return list(dict.fromkeys(rewrites))[:n]


def hypothetical_document(llm: BaseChatModel, question: str) -> str:
    """HyDE: a passage the chat model imagines answering the question, embedded in place of the question."""
    chain = ChatPromptTemplate.from_messages([("human", load_prompt("hyde.txt"))]) | llm | StrOutputParser()
    return chain.invoke({"question": question}).strip() or question


def fuse_rankings(rankings: list[list[Hit]], rrf_k: float, k: int) -> list[Hit]:
    """Reciprocal rank fusion of the result lists of several queries. The two legs of one query fuse in SQL;
    lists from separate statements fuse here, in a few lines rather than a dependency on the hot path."""
    scores: dict[int, float] = {}
    first_seen: dict[int, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, 1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (rrf_k + rank)
            first_seen.setdefault(hit.chunk_id, hit)
    best = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))[:k]
    return [replace(first_seen[chunk_id], score=scores[chunk_id]) for chunk_id in best]
