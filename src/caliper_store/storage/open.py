"""Choosing a backend from the database URL."""

from __future__ import annotations

from caliper_store.config import Settings
from caliper_store.errors import ConfigurationError
from caliper_store.storage.base import Store
from caliper_store.storage.compression import CompressionSettings


def compression_settings(settings: Settings) -> CompressionSettings:
    """How this store compresses raw events, from its named settings."""
    return CompressionSettings(
        level=settings.raw_compression_level,
        dictionary_bytes=settings.raw_dictionary_bytes,
        train_events=settings.raw_dictionary_train_events,
        retrain_ratio=settings.raw_dictionary_retrain_percent / 100,
    )


def open_store(settings: Settings) -> Store:
    """Open the Store the database URL names.

    Raises:
        ConfigurationError: unknown scheme, or the PostgreSQL driver is not installed.
    """
    url = settings.database_url
    if url.startswith("sqlite:"):
        from caliper_store.storage.sqlite import SqliteStore

        try:
            return SqliteStore(
                url,
                synchronous=settings.sqlite_synchronous,
                busy_timeout_ms=settings.write_lock_timeout_ms,
                writer_cache_mib=settings.sqlite_writer_cache_mib,
                segment_events=settings.sqlite_segment_events,
                retry_after_s=settings.retry_after_s,
                query_timeout_ms=settings.query_timeout_ms,
                compression=compression_settings(settings),
            )
        except ValueError as error:
            raise ConfigurationError(str(error), field="database_url") from error
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        try:
            from caliper_store.storage.postgres import PostgresStore
        except ImportError as error:
            raise ConfigurationError(
                "PostgreSQL needs the driver: pip install 'caliper_store[postgres]'",
                field="database_url",
            ) from error
        return PostgresStore(
            url,
            pool_size=settings.db_pool_size,
            lock_timeout_ms=settings.write_lock_timeout_ms,
            retry_after_s=settings.retry_after_s,
            query_timeout_ms=settings.query_timeout_ms,
            compression=compression_settings(settings),
        )
    raise ConfigurationError(f"unknown database URL scheme in {url.split(':', 1)[0]!r}")
