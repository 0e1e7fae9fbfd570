"""The one configuration object: environment variables (``PGRAG_*``, ``DATABASE_URL``) over ``pgrag.toml``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SearchMode = Literal["dense", "lexical", "hybrid"]
Fusion = Literal["minmax", "rrf"]
Expansion = Literal["none", "prf", "multi-query", "hyde"]

# Dense and lexical weight of each fusion rule unless set: the best worst case over five corpora for min-max
# fusion, equal weights for RRF (docs/eval/fusion.md).
FUSION_WEIGHTS: dict[str, tuple[float, float]] = {"minmax": (1.5, 1.0), "rrf": (1.0, 1.0)}


def default_data_dir() -> Path:
    """Where the embedded database and trained models live.

    As root the embedded server runs as an unprivileged system user that must traverse every parent folder of
    its data dir; rather than opening up /root, root gets the conventional system location /var/lib/pgrag.
    """
    if os.name != "nt" and os.geteuid() == 0:
        return Path("/var/lib/pgrag")
    return Path(platformdirs.user_data_dir("pgrag"))


class Settings(BaseSettings):
    """Every knob pgrag has. Provider specs are ``provider:model`` strings, so swapping needs no code change."""

    model_config = SettingsConfigDict(
        env_prefix="PGRAG_",
        toml_file=os.environ.get("PGRAG_CONFIG", "pgrag.toml"),
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "PGRAG_DATABASE_URL", "database_url"),
        description="Any PostgreSQL with pgvector; unset starts the embedded server in data_dir.",
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    embedded_shared_buffers_mb: int | None = Field(
        None, ge=16, description="The embedded server's shared_buffers in MB, applied when it (re)starts; unset: a "
        "quarter of this machine's memory, at most 2048 (PostgreSQL's own 128 MB makes every search read its "
        "pages from the OS at 100k chunks: docs/scale.md).")
    allow_downloads: bool = Field(False, description="Let model libraries reach model hubs (off: offline).")

    embeddings: str = "huggingface:sentence-transformers/all-MiniLM-L6-v2"
    chat_model: str = "llamacpp:qwen2.5-1.5b"
    reranker: str = Field(
        "auto",
        description=(
            "huggingface:<name-or-path>, none, or auto: the hub model cross-encoder/ms-marco-MiniLM-L-6-v2 when "
            "it is in the local model cache, else the reranker trained by `pgrag train-reranker` into "
            "data_dir/models/reranker, else no reranking."
        ),
    )

    collection: str = "default"
    chunk_size: int = Field(1000, gt=50, description="Maximum characters per chunk.")
    chunk_overlap: int = Field(150, ge=0)
    contextual_chunks: bool = Field(
        True, description="Index and embed each chunk with its document title and heading path (stored apart "
        "from the text that search shows). Measured in docs/eval/README.md.")
    embed_batch_size: int = Field(32, gt=0)
    duplicate_threshold: float = Field(
        0.95, ge=0, le=1, description="Ingest reports new chunks at least this similar (cosine) to a chunk of "
        "another document; `pgrag duplicates` uses it as its default.")
    max_file_mb: float = Field(100, gt=0, description="Largest file ingest reads; a larger one is reported and skipped.")
    max_document_chunks: int = Field(
        100_000, gt=0, description="Most chunks one document may split into; a document with more is reported and "
        "skipped (an 8 MB line of one repeated word is rarely knowledge).")
    embedding_storage: Literal["vector", "halfvec"] = Field(
        "vector", description="How new embedding spaces store vectors: vector (float4) or halfvec (float2, half size).")
    provider_retries: int = Field(6, ge=0, description="Retries, with exponential backoff, of remote providers.")

    mode: SearchMode = "hybrid"
    top_k: int = Field(5, gt=0, description="Results returned by search and passed to the answer.")
    candidates: int = Field(50, gt=0, description="Rows each leg of hybrid search contributes before fusion.")
    # Chosen by the worst case over five development corpora (scripts/tune_fusion.py, docs/eval/fusion.md), then by
    # the mean: min-max fusion of both scores of every candidate, dense weighted 1.5 to 1, is at least 0.03 above
    # the better single leg on every one, as RRF k=5 is, and ahead of it on four of the five.
    fusion: Fusion = Field("minmax", description=(
        "How hybrid search fuses its legs: minmax (each candidate's cosine and BM25 score, each scaled to [0, 1] "
        "over all candidates, weighted) or rrf (reciprocal rank fusion of the two rankings, k = rrf_k)."))
    rrf_k: float = Field(5.0, gt=0)
    dense_weight: float | None = Field(None, ge=0, description="Unset: the fusion rule's own (FUSION_WEIGHTS).")
    lexical_weight: float | None = Field(None, ge=0, description="Unset: the fusion rule's own (FUSION_WEIGHTS).")
    bm25_k1: float = Field(0.9, gt=0)
    bm25_b: float = Field(0.4, ge=0, le=1)
    lexical_depth: int = Field(1000, ge=0, description="Postings the lexical leg reads per query term, highest BM25 impact first, before scoring its best chunks exactly; 0 reads whole posting lists (exact, slower as the collection grows). Measured in docs/scale.md.")
    rerank_candidates: int = Field(20, gt=0, description="Fused candidates the cross-encoder rescores.")
    rerank_weight: float | None = Field(
        None, ge=0,
        description=(
            "Weight of the cross-encoder's order against the hybrid order, fused by RRF (k = rrf_k). Unset: the "
            "weight `pgrag train-reranker` chose on validation queries for its model, else the cross-encoder's "
            "order alone."
        ),
    )
    # scripts/calibrate_relevance.py: the highest threshold that wrongly flags ≤1 % of answerable SciFact queries.
    min_relevance: float = Field(
        0.33, description="Retrieval health check: when the best passage's cosine similarity to the question is "
        "below this, ask says the knowledge base has no good answer. Calibrated in docs/eval/README.md.")
    abstain_on_unseen_words: bool = Field(
        True, description="ask answers 'the knowledge base does not say' without calling the model when the "
        "question names a word that no passage contains (measured in docs/eval/answers.md).")
    expansion: Expansion = Field("none", description="Query expansion: none, prf, multi-query or hyde.")
    prf_docs: int = Field(5, gt=0, description="Pseudo-relevance feedback: top lexical results to learn from.")
    prf_terms: int = Field(10, gt=0, description="Pseudo-relevance feedback: terms added to the lexical query.")
    prf_weight: float = Field(0.5, ge=0, description="Pseudo-relevance feedback: weight of an added term.")
    multi_queries: int = Field(3, gt=0, description="Rewrites the chat model writes for multi-query expansion.")

    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated keys; when set, every route but /health needs one.")
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Comma-separated origins.")
    max_request_bytes: int = Field(20 * 1024 * 1024, gt=0, description="Largest request body (uploads included).")

    temperature: float = 0.1
    max_tokens: int = Field(200, gt=0)
    context_window: int = Field(4096, gt=256, description="Context length for local llama.cpp models.")
    # A small model on 2 cores reads 40-70 prompt tokens/s (Qwen2.5 1.5B, AVX2-AVX-512): what goes into the prompt is budgeted.
    # Six sources, not four: correct 0.58 -> 0.73 on the tuning subset, total p50 14 s (docs/eval/answers.md).
    answer_sources: int = Field(6, gt=0, description="Most retrieved passages ask gives the chat model.")
    # Passages far below the best cost prompt tokens, the first token's wait, and seldom hold the answer: on both
    # manuals a 0.85 share cut the prompt by 29-35 % and the first token by 1.4-1.9 s, and lost no right answers net
    # (docs/eval/answers.md).
    answer_score_share: float = Field(
        0.85, ge=0, le=1, description="Of the answer_sources, those after the first three go into the prompt only "
        "when their fused score is at least this share of the best one's (min-max fusion; 0 gives all of them).")
    # The best passage nearly whole, the others cut to their best sentences: the model states the answer most often
    # when the passage listed next to the question holds it (docs/eval/answers.md).
    answer_chars_best_source: int = Field(
        1000, gt=50, description="Characters of the best passage in the prompt (a default chunk is at most 1000).")
    answer_chars_per_source: int = Field(
        300, gt=50, description="Characters of each other passage in the prompt: its sentences that share most "
        "words with the question. Measured in docs/eval/answers.md.")

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def embed_flush_chunks(self) -> int:
        """Chunks embedded per call and written per transaction by ingest and reindex."""
        return self.embed_batch_size * 32

    @property
    def log_file(self) -> Path:
        """Where the CLI writes warnings: libraries' (pypdf's) and each file ingest skipped, with the reason."""
        return self.data_dir / "logs" / "pgrag.log"

    @property
    def fusion_weights(self) -> tuple[float, float]:
        """Dense and lexical weight of hybrid search: as set, else the fusion rule's measured defaults."""
        dense, lexical = FUSION_WEIGHTS[self.fusion]
        return (dense if self.dense_weight is None else self.dense_weight,
                lexical if self.lexical_weight is None else self.lexical_weight)

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)
