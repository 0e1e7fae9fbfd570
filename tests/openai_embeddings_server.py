"""A local OpenAI-compatible /v1/embeddings server backed by the packaged MiniLM, for testing the OpenAI
provider path for real over HTTP. It can also misbehave the way remote providers do, on request:

    FAIL_FIRST=N        answer the first N requests with 429 (rate limited), to exercise retries
    WRONG_DIMENSION=1   return vectors one component short
"""

import os
import sys

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

from pgrag.providers.embeddings import packaged_model_path

app = FastAPI()
model = SentenceTransformer(packaged_model_path("sentence-transformers/all-MiniLM-L6-v2"))
state = {"requests": 0}


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
    vectors = model.encode(texts, normalize_embeddings=True).tolist()
    if os.environ.get("WRONG_DIMENSION"):
        vectors = [v[:-1] for v in vectors]
    return {"object": "list", "model": request.model, "usage": {"prompt_tokens": 0, "total_tokens": 0},
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
