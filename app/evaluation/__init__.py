"""Retrieval evaluation on BEIR-format datasets (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."""
