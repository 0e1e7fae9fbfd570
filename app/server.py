"""The HTTP face of pgrag: LangServe routes for the answer chain (/rag) and search (/search), REST endpoints for
the knowledge base, API keys, size limits and JSON errors. Run it with `pgrag serve`.

The lifespan opens one KnowledgeBase (and so the embedded server, when DATABASE_URL is unset) and closes it on
shutdown, so the database never outlives uvicorn.
"""

from __future__ import annotations

import re
import secrets
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from langchain_core.runnables import Runnable, RunnableLambda
from langserve import add_routes
from pydantic import AfterValidator, BaseModel, Field, ValidationError, create_model
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pgrag.chains.answer import json_ready, map_chunks
from pgrag.config import SearchMode, Settings
from pgrag import validation
from pgrag.errors import InvalidInput, PgragError
from pgrag.kb import KnowledgeBase
from pgrag.retrieval import source_fields

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
OPEN_PATHS = {"/health"}
MAX_FILE_NAME_BYTES = 255  # NAME_MAX of Linux file systems


def checked(check: Callable[[Any], Any]) -> AfterValidator:
    """A pgrag input check as a pydantic validator, so that a bad value is a 422 before a stream has begun
    (after that, LangServe can only report an error event with status 500)."""
    def validate(value: Any) -> Any:
        try:
            return check(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    return AfterValidator(validate)


UserText = Annotated[str, checked(lambda value: validation.text(value, "text"))]
MetadataFilter = Annotated[dict[str, Any], checked(validation.metadata_filter)]


def input_models(settings: Settings) -> tuple[type[BaseModel], type[BaseModel]]:
    """Request schemas whose defaults are this server's settings. No field is nullable: LangServe's playground
    cannot render a form for ``anyOf [..., null]`` and shows a blank page."""
    common: dict[str, Any] = {
        "collection": (UserText, Field(settings.collection, min_length=1, max_length=64)),
        "mode": (SearchMode, settings.mode),
        "filter": (MetadataFilter, Field(default_factory=dict, description="Metadata that chunks must contain.")),
    }
    rag = create_model("RagInput", question=(UserText, Field(min_length=1, max_length=4000)),
                       k=(int, Field(settings.top_k, ge=1, le=50)), **common)
    search = create_model("SearchInput", query=(UserText, Field(min_length=1, max_length=4000)),
                          k=(int, Field(settings.top_k, ge=1, le=200)), rerank=(bool, True), **common)
    return rag, search


class SourceOut(BaseModel):
    source: str
    chunk_id: int
    content: str
    scores: dict[str, float | int | None]
    metadata: dict[str, Any]


class Citation(BaseModel):
    number: int
    source: str | None
    chunk_id: int | None


class RetrievalHealth(BaseModel):
    best_similarity: float | None
    threshold: float
    unseen_words: list[str]
    weak: bool


class Timings(BaseModel):
    retrieval_s: float | None
    first_token_s: float | None
    total_s: float
    tokens: int
    tokens_per_s: float | None


class RagOutput(BaseModel):
    question: str
    retrieval: RetrievalHealth
    answer: str
    citations: list[Citation]
    sources: list[SourceOut]
    grounded: bool
    abstained: bool
    timings: Timings


def retriever_options(request: dict[str, Any]) -> dict[str, Any]:
    return {key: request.get(key) or None for key in ("collection", "k", "mode", "filter")}


def rag_runnable(kb: KnowledgeBase, input_type: type[BaseModel]) -> Runnable:
    """The answer chain with per-request retrieval options, its sources as plain objects (the fields of
    ``pgrag ask --json``); streams like the chain itself."""

    def route(request: dict[str, Any]) -> Runnable:
        question = request["question"]
        return (RunnableLambda(lambda _: {"question": question}) | kb.answer_chain(**retriever_options(request))
                | map_chunks(json_ready))

    return RunnableLambda(route).with_types(input_type=input_type, output_type=RagOutput)


def search_runnable(kb: KnowledgeBase, input_type: type[BaseModel]) -> Runnable:
    def search(request: dict[str, Any]) -> list[dict[str, Any]]:
        docs = kb.search(request["query"], rerank=request.get("rerank", True), **retriever_options(request))
        return [source_fields(doc) for doc in docs]

    return RunnableLambda(search).with_types(input_type=input_type, output_type=list[SourceOut])


class ApiKeyCheck:
    """Every route but the open ones needs one of the keys, in X-API-Key or as a Bearer token. Plain ASGI, not
    ``@app.middleware``: that runs the route in a task group, and an error raised while reading the body (the
    413 below) would then reach FastAPI's body parsing wrapped in an ExceptionGroup and come out as a 400."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        # As bytes: compare_digest refuses non-ASCII str, and a header may carry any characters.
        self.app, self.keys = app, [key.encode() for key in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS and scope["method"] != "OPTIONS":
            headers = Headers(scope=scope)
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if not any(secrets.compare_digest(given.encode(), key) for key in self.keys):
                response = JSONResponse({"detail": "Missing or invalid API key: send it in the X-API-Key header."},
                                        status_code=401)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised by the body reader past the limit. An HTTPException, so that FastAPI's body parsing passes it on
    (it turns other errors into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body is larger than {limit} bytes (the server's PGRAG_MAX_REQUEST_BYTES); "
                              "send less per request.")


class BodySizeLimit:
    """Reject bodies over the limit with a JSON 413 that names the limit, whether or not the client declared a
    Content-Length. By hand because FastAPI's own ``max_body_size`` answers a declared oversize body in plain
    text with no limit named, and the API answers every error in JSON with what to do."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = JSONResponse({"detail": BodyTooLarge(self.max_bytes).detail}, status_code=413)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await too_large(scope, receive, send)
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)  # answered by FastAPI as any HTTPException is
            return message

        await self.app(scope, counting_receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    knowledge_base = KnowledgeBase(settings, connect=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(knowledge_base.connect)
        await run_in_threadpool(lambda: knowledge_base.models.embeddings)  # load now, not in the first request
        try:
            yield
        finally:
            knowledge_base.close()

    app = FastAPI(title="pgrag", version="0.1.0", lifespan=lifespan,
                  description="Ask questions of your documents, on PostgreSQL + pgvector.")

    def kb() -> KnowledgeBase:
        return knowledge_base

    if settings.api_keys:
        app.add_middleware(ApiKeyCheck, keys=settings.api_keys)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])

    @app.exception_handler(PgragError)
    async def pgrag_error(request: Request, exc: PgragError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)  # LangServe's batch routes validate each input themselves
    async def invalid_request(request: Request, exc: RequestValidationError | ValidationError) -> JSONResponse:
        # Only where and what: an error's "input" may hold what JSON cannot carry back (NaN, bytes). LangServe
        # raises some with plain strings as errors.
        errors = [{"loc": list(error.get("loc", ())), "msg": str(error.get("msg")), "type": error.get("type")}
                  if isinstance(error, dict) else {"msg": str(error)} for error in exc.errors()]
        return JSONResponse({"detail": "Invalid request.", "errors": errors}, status_code=422)

    @app.exception_handler(UnicodeDecodeError)
    async def not_utf8(request: Request, exc: UnicodeDecodeError) -> JSONResponse:
        return JSONResponse({"detail": f"The request body is not UTF-8 (byte {exc.object[exc.start]:#04x} at "
                                       f"offset {exc.start})."}, status_code=400)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        return JSONResponse({"detail": "The request body is nested too deeply."}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"Internal error ({type(exc).__name__}); see the server log."},
                            status_code=500)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready(knowledge_base: KnowledgeBase = Depends(kb)) -> dict[str, Any]:
        await run_in_threadpool(knowledge_base.collections)
        return {"status": "ready"}

    @app.get("/collections")
    async def list_collections(knowledge_base: KnowledgeBase = Depends(kb)) -> list[dict[str, Any]]:
        return await run_in_threadpool(knowledge_base.collections)

    @app.get("/collections/{collection}/documents")
    async def list_documents(collection: str, knowledge_base: KnowledgeBase = Depends(kb)) -> list[dict[str, Any]]:
        return await run_in_threadpool(knowledge_base.documents, collection=collection)

    @app.delete("/collections/{collection}/documents")
    async def delete_document(collection: str, source: str,
                              knowledge_base: KnowledgeBase = Depends(kb)) -> dict[str, str]:
        await run_in_threadpool(partial(knowledge_base.delete, source, collection=collection, missing_ok=False))
        return {"deleted": source}

    @app.get("/collections/{collection}/similar")
    async def similar(collection: str, source: str | None = None, chunk_id: int | None = None,
                      k: int = Query(5, ge=1, le=100),
                      knowledge_base: KnowledgeBase = Depends(kb)) -> list[dict[str, Any]]:
        """Documents like ``source``, or chunks like ``chunk_id`` (give one)."""
        if (source is None) == (chunk_id is None):
            raise HTTPException(400, "Give either source (documents like it) or chunk_id (chunks like it).")
        return await run_in_threadpool(knowledge_base.similar, chunk_id if source is None else source,
                                       collection=collection, k=k)

    @app.get("/collections/{collection}/duplicates")
    async def duplicates(collection: str, threshold: float | None = Query(None, ge=0, le=1),
                         limit: int = Query(100, ge=1, le=10_000),
                         knowledge_base: KnowledgeBase = Depends(kb)) -> list[dict[str, Any]]:
        return await run_in_threadpool(partial(knowledge_base.duplicates, collection=collection,
                                               threshold=threshold, limit=limit))

    @app.get("/collections/{collection}/outliers")
    async def outliers(collection: str, k: int = Query(10, ge=1, le=1000),
                       knowledge_base: KnowledgeBase = Depends(kb)) -> list[dict[str, Any]]:
        return await run_in_threadpool(partial(knowledge_base.outliers, collection=collection, k=k))

    @app.post("/collections/{collection}/documents")
    async def upload(collection: str, files: list[UploadFile] = File(...),
                     knowledge_base: KnowledgeBase = Depends(kb)) -> dict[str, Any]:
        """Upload files (multipart) to ingest; an unusable file is reported in ``failed``, not fatal."""
        if not COLLECTION_NAME.match(collection):
            raise HTTPException(400, "Collection names are 1-64 letters, digits, '_', '.' or '-'.")
        folder = settings.uploads_dir / collection
        folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for upload_file in files:
            target = folder / safe_filename(upload_file.filename)
            target.write_bytes(await upload_file.read())
            saved.append(target)
        report = await run_in_threadpool(knowledge_base.ingest, saved, collection=collection)
        for name, _ in report.failed:  # keep only what was ingested: a rejected file is nobody's source
            Path(name).unlink(missing_ok=True)
        with suppress(OSError):
            folder.rmdir()  # only when empty: every file of a new collection was rejected
        return {"added": report.added, "updated": report.updated, "unchanged": report.unchanged,
                "failed": [{"file": Path(name).name, "reason": reason} for name, reason in report.failed],
                "chunks": report.chunks, "duplicates": report.duplicates}

    def known_collections(schema: type[BaseModel]) -> Callable[[dict[str, Any], Request], Awaitable[dict]]:
        async def check(config: dict[str, Any], request: Request) -> dict[str, Any]:
            """An unknown collection is a 404 here, before a stream begins: after that, LangServe can only send
            an error event with status 500. Invalid inputs are left to LangServe's validation (a 422)."""
            body = await request.json()
            items = body.get("inputs") or [body.get("input")] if isinstance(body, dict) else []
            for item in items if isinstance(items, list) else []:
                try:
                    name = schema.model_validate(item).collection
                except ValidationError:
                    continue
                await run_in_threadpool(knowledge_base.require_collection, name)
            return config

        return check

    rag_input, search_input = input_models(settings)
    add_routes(app, rag_runnable(knowledge_base, rag_input), path="/rag", playground_type="default",
               per_req_config_modifier=known_collections(rag_input))
    add_routes(app, search_runnable(knowledge_base, search_input), path="/search",
               per_req_config_modifier=known_collections(search_input))
    return app


def safe_filename(name: str | None) -> str:
    """An uploaded file's name, only if it is a plain file name: never a path out of the upload folder."""
    if not name or name != Path(name).name or name in (".", "..") or "\\" in name or "\x00" in name:
        raise HTTPException(400, f"Invalid file name {name!r}: send a plain file name without folders.")
    if len(name.encode()) > MAX_FILE_NAME_BYTES:
        raise HTTPException(400, f"Invalid file name: {len(name.encode())} bytes long, over the file system's "
                                 f"limit of {MAX_FILE_NAME_BYTES}; send a shorter file name.")
    return name
