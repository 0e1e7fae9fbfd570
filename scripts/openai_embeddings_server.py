"""A local OpenAI-compatible /v1/embeddings server, for testing the OpenAI provider path for real over HTTP and
for benchmarks that must not wait for an encoder. Usage: ``python scripts/openai_embeddings_server.py PORT``.

    VECTORS=minilm      (default) the packaged all-MiniLM-L6-v2
    VECTORS=hash        384-d feature-hashed bags of words: deterministic, nearly free, similar texts get
                        similar vectors; for database-side benchmarks (scripts/bench_scale.py)
    FAIL_FIRST=N        answer the first N requests with 429 (rate limited), to exercise retries
    WRONG_DIMENSION=1   return vectors one component short
"""

import base64
import hashlib
import os
import re
import sys

import numpy as np
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from pgrag.providers.embeddings import packaged_model_path

HASH_DIMENSION = 384
app = FastAPI()
state = {"requests": 0}


def hashed(texts: list[str]) -> list[list[float]]:
    vectors = np.zeros((len(texts), HASH_DIMENSION), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            vectors[row, digest % HASH_DIMENSION] += 1.0 if digest >> 63 else -1.0
    vectors[:, 0] += 1e-3  # never the zero vector, which has no direction
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).tolist()


if os.environ.get("VECTORS", "minilm") == "hash":
    encode = hashed
else:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(packaged_model_path("sentence-transformers/all-MiniLM-L6-v2"))

    def encode(texts: list[str]) -> list[list[float]]:
        return model.encode(texts, normalize_embeddings=True).tolist()


class EmbeddingRequest(BaseModel):
    input: str | list[str]
    model: str
    dimensions: int | None = None
    encoding_format: str | None = None


@app.post("/v1/embeddings")
def embeddings(request: EmbeddingRequest):
    state["requests"] += 1
    if state["requests"] <= int(os.environ.get("FAIL_FIRST", "0")):
        return JSONResponse({"error": {"message": "rate limited", "type": "rate_limit"}}, status_code=429)
    texts = [request.input] if isinstance(request.input, str) else request.input
    vectors = encode(texts)
    if os.environ.get("WRONG_DIMENSION"):
        vectors = [v[:-1] for v in vectors]
    if request.encoding_format == "base64":  # what the OpenAI client asks for unless told otherwise, as OpenAI,
        # vLLM and llama.cpp's server answer it: little-endian float32, far cheaper to parse than JSON floats
        vectors = [base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode() for v in vectors]
    return {"object": "list", "model": request.model, "usage": {"prompt_tokens": 0, "total_tokens": 0},
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
