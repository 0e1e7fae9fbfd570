"""The Python API in a few lines: open the knowledge base, ingest, search, ask.

Run from the repository root: .venv/bin/python scripts/demo.py
"""

from pgrag import KnowledgeBase

with KnowledgeBase.open(collection="pgrag-docs") as kb:
    report = kb.ingest(["README.md", "docs"])
    print(f"ingested {len(report.added) + len(report.updated)} documents, {len(report.unchanged)} unchanged")
    for doc in kb.search("How are dense and lexical results fused?", k=3):
        print(f"{doc.metadata['scores']['fused']:.4f}  {doc.metadata['source']}")
    answer = kb.ask("How does pgrag fuse dense and lexical search results?")
    print(answer.answer)
    for citation in answer.citations:
        print(f"[{citation['number']}] {citation['source']}")
