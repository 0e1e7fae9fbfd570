"""pgrag: retrieval-augmented generation on PostgreSQL + pgvector. Start with ``KnowledgeBase.open()``."""

from pgrag.kb import Answer, KnowledgeBase

__all__ = ["Answer", "KnowledgeBase"]
