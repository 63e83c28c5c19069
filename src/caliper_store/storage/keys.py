"""API keys: generated once, stored only as a hash, told apart by a short prefix.

Keys are random UUIDs (122 bits), so a plain SHA-256 is the right hash: slow password hashes
protect guessable secrets, and would cost every request time for nothing here.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, Row, insert, select, update
from sqlalchemy.exc import DBAPIError

from caliper_store.errors import NotFound, StorageUnavailable
from caliper_store.storage import audit
from caliper_store.storage.schema import api_keys

KeyStatus = Literal["active", "inactive", "revoked"]
_STATUS_ACTIONS: dict[str, audit.AuditAction] = {
    "active": "key_activated",
    "inactive": "key_deactivated",
    "revoked": "key_revoked",
}
PREFIX_CHARS = 8
SCOPES = ("ingest", "read", "admin")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as the store knows it: never the key itself, only its hash and prefix."""

    id: int
    prefix: str
    label: str
    scopes: tuple[str, ...]
    status: KeyStatus
    is_strict: bool
    created_at: str
    last_used_at: str | None
    key_hash: str

    @property
    def is_active(self) -> bool:
        """Only active keys are accepted."""
        return self.status == "active"


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str:
    """The short, shown part of a key that lets people tell keys apart."""
    return key[:PREFIX_CHARS]


class KeyRegistry:
    """Create, list, look up and change the status of API keys."""

    def __init__(self, engine: Engine, *, retry_after_s: int) -> None:
        self._engine = engine
        self._retry_after_s = retry_after_s

    def create(
        self,
        *,
        label: str,
        now: str,
        scopes: tuple[str, ...] = ("ingest",),
        is_strict: bool = False,
        actor: str | None = None,
    ) -> tuple[str, ApiKey]:
        """Generate a new key; the key itself is returned here once and never again.

        The audit log records who made it (``actor``, the operator by default).
        """
        unknown = set(scopes) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scope(s) {sorted(unknown)}; known: {', '.join(SCOPES)}")
        key = str(uuid.uuid4())
        values = {
            "key_prefix": key_prefix(key),
            "key_hash": hash_key(key),
            "label": label,
            "scopes": " ".join(scopes),
            "status": "active",
            "is_strict": is_strict,
            "created_at": now,
        }
        with self._engine.begin() as connection:
            key_id = connection.execute(insert(api_keys).values(**values)).inserted_primary_key
            assert key_id is not None
            audit.record(
                connection,
                at=now,
                actor=actor or audit.operator(),
                action="key_created",
                target=f"key {key_id[0]} ({values['key_prefix']}, {label})",
                detail={"scopes": list(scopes), "strict": is_strict},
            )
        return key, self.get(int(key_id[0]))

    def list(self) -> list[ApiKey]:
        """Every key, oldest first."""
        with self._engine.connect() as connection:
            rows = connection.execute(select(api_keys).order_by(api_keys.c.id)).all()
        return [_from_row(row) for row in rows]

    def get(self, key_id: int) -> ApiKey:
        """One key by id."""
        with self._engine.connect() as connection:
            row = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"no API key with id {key_id}")
        return _from_row(row)

    def resolve(self, reference: str) -> ApiKey:
        """Find a key by id, prefix or label, as typed on the command line."""
        candidates = [
            key for key in self.list() if reference in (str(key.id), key.prefix, key.label)
        ]
        if not candidates:
            raise NotFound(f"no API key matches {reference!r} (give its id, prefix or label)")
        if len(candidates) > 1:
            ids = ", ".join(str(key.id) for key in candidates)
            raise NotFound(f"{reference!r} matches several keys (ids {ids}); give the id")
        return candidates[0]

    def authenticate(self, key: str) -> ApiKey | None:
        """The key record for a presented key, compared in constant time; None if unknown."""
        presented = hash_key(key)
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(
                    select(api_keys).where(api_keys.c.key_prefix == key_prefix(key))
                ).all()
        except DBAPIError as error:
            raise StorageUnavailable(
                "the database cannot be reached to check the key", retry_after_s=self._retry_after_s
            ) from error
        for row in rows:
            if hmac.compare_digest(row.key_hash, presented):
                return _from_row(row)
        return None

    def set_status(
        self, key_id: int, status: KeyStatus, *, now: str, actor: str | None = None
    ) -> ApiKey:
        """Activate, deactivate or revoke a key (audited); a revoked key stays revoked."""
        current = self.get(key_id)
        if current.status == "revoked" and status != "revoked":
            raise NotFound(f"API key {key_id} is revoked and cannot be {status}d again")
        with self._engine.begin() as connection:
            connection.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id)
                .values(status=status, status_changed_at=now)
            )
            audit.record(
                connection,
                at=now,
                actor=actor or audit.operator(),
                action=_STATUS_ACTIONS[status],
                target=f"key {key_id} ({current.prefix}, {current.label})",
                detail={"from": current.status},
            )
        return self.get(key_id)


def _from_row(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        prefix=row.key_prefix,
        label=row.label,
        scopes=tuple(row.scopes.split()),
        status=row.status,
        is_strict=bool(row.is_strict),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        key_hash=row.key_hash,
    )
