"""The one error tree. Every error pgrag raises on purpose derives from ``PgragError``: its message says what went
wrong and what to do, and it carries the exit code the CLI returns and the HTTP status the server answers with,
so the CLI and the server each need a single handler and nothing else is caught wholesale."""

from __future__ import annotations


class PgragError(Exception):
    """Base of every error pgrag raises for the user to act on."""

    exit_code = 1
    http_status = 500


class InvalidInput(PgragError, ValueError):
    """A malformed argument, setting, spec or request value."""

    exit_code = 2
    http_status = 400


class UnusableFile(InvalidInput):
    """A file that cannot be ingested; ingest reports it and goes on with the others."""

    http_status = 422


class NotFound(PgragError, LookupError):
    exit_code = 1
    http_status = 404


class UnknownCollection(NotFound):
    """Asked to read a collection that does not exist."""


class DocumentNotFound(NotFound):
    """Asked to delete or read a document that the collection does not have."""


class Conflict(PgragError):
    http_status = 409


class EmbeddingModelMismatch(Conflict):
    """The configured embedding model is not the one that built the collection's vectors."""


class ReindexInProgress(Conflict):
    """Another reindex of the same collection holds its lock."""


class ProviderError(PgragError):
    """A model provider (local or remote) failed; nothing was written."""

    http_status = 502


class EmbeddingProviderError(ProviderError):
    """The embedding provider failed or returned unusable vectors; nothing of the failing batch was written."""


class ModelUnavailable(PgragError):
    """A configured model cannot be loaded here: its file or package is missing or corrupt."""

    http_status = 503


class DatabaseUnavailable(PgragError):
    """The database cannot be reached or started, or its schema is not the one this pgrag needs."""

    http_status = 503


class SchemaOutOfDate(DatabaseUnavailable):
    """The database schema is behind this version of pgrag."""


class SqlError(InvalidInput):
    """A statement given to ``pgrag db sql`` failed."""

    exit_code = 1
