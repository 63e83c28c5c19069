"""Pseudonyms: an HMAC-SHA256 of a person's id under a secret kept outside the database.

A salted hash kept beside the data can be reversed by enumerating ids and IPv4 addresses
(snowplow #3648); an HMAC under a key the database never holds cannot. The pseudonym names the
key by the first hex digits of the key's own SHA-256, so a rotated key gives pseudonyms that are
told apart from the old ones, and it is a valid IRI, so it stands wherever an id stood.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from caliper_store.errors import ConfigurationError

PSEUDONYM_PREFIX = "urn:caliper-store:pseudonym:"
# 128 bits of the HMAC: no two people of any campus share one.
PSEUDONYM_HEX_CHARS = 32
KEY_ID_HEX_CHARS = 8
MIN_KEY_BYTES = 16


class Pseudonymizer:
    """Turns ids into stable pseudonyms; one per server process, from one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"the pseudonym key must hold at least {MIN_KEY_BYTES} bytes "
                "(make one with: openssl rand -hex 32)",
                field="pseudonym_key_file",
            )
        self._secret = secret
        self.key_id = hashlib.sha256(secret).hexdigest()[:KEY_ID_HEX_CHARS]
        self._prefix = f"{PSEUDONYM_PREFIX}{self.key_id}:"
        self._known: dict[str, str] = {}

    def pseudonym(self, value: str) -> str:
        """The pseudonym of ``value``; a value that already is a pseudonym is kept as it is."""
        known = self._known.get(value)
        if known is not None:
            return known
        if value.startswith(PSEUDONYM_PREFIX):
            return value
        digest = hmac.new(self._secret, value.encode("utf-8"), hashlib.sha256).hexdigest()
        known = self._prefix + digest[:PSEUDONYM_HEX_CHARS]
        if len(self._known) < 100_000:  # people recur; a bounded memo spares the HMAC
            self._known[value] = known
        return known

    def digest(self, value: str) -> str:
        """The full HMAC-SHA256 of ``value`` in hex: how the audit log names an erased person."""
        return hmac.new(self._secret, value.encode("utf-8"), hashlib.sha256).hexdigest()


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` has the form of a pseudonym this store writes."""
    return value.startswith(PSEUDONYM_PREFIX)


def load_pseudonymizer(key_file: str, key: str) -> Pseudonymizer | None:
    """The pseudonymizer of the configured secret: a file's contents, or the value itself.

    Returns None when neither is set.

    Raises:
        ConfigurationError: the file cannot be read, or the secret is too short.
    """
    if key_file:
        try:
            secret = Path(key_file).read_bytes().strip()
        except OSError as error:
            raise ConfigurationError(
                f"cannot read pseudonym_key_file {key_file}: {error.strerror}",
                field="pseudonym_key_file",
            ) from error
        return Pseudonymizer(secret)
    if key:
        return Pseudonymizer(key.encode("utf-8"))
    return None
