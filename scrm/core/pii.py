"""Phone numbers at rest: a keyed digest for lookups, a sealed copy for sending.

Nothing stores a phone in plain text. `phone_digest` (HMAC-SHA256) answers "who holds
this number" without revealing it; `last4` is kept beside it for display and "last four
digits" searches; `seal_phone` encrypts the number (AES-256-GCM, a random nonce per value)
for the few paths that need it back: sending an SMS and the audited "show full number".

Both keys come from `settings.PII_KEY` (env `SCRM_PII_KEY`), each under its own label, so
a leaked digest key never opens a sealed phone. Rotating PII_KEY invalidates every stored
digest and sealed value: it is set once per installation.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

NONCE_BYTES = 12
# Shown in place of a phone everywhere: the last four digits only (we keep nothing else
# readable without decrypting).
MASK_PREFIX = "*******"


@cache
def _master_key() -> bytes:
    if settings.PII_KEY:
        return settings.PII_KEY.encode()
    # Development and tests: derived from SECRET_KEY under a fixed label (check --deploy
    # warns when production runs like this).
    return hmac.new(settings.SECRET_KEY.encode(), b"scrm pii key v1", hashlib.sha256).digest()


def _subkey(label: bytes) -> bytes:
    return hmac.new(_master_key(), label, hashlib.sha256).digest()


@cache
def _digest_hmac() -> hmac.HMAC:
    # Copying a keyed HMAC skips re-deriving the key pads: imports digest every row.
    return hmac.new(_subkey(b"phone digest v1"), digestmod=hashlib.sha256)


@cache
def _cipher() -> AESGCM:
    return AESGCM(_subkey(b"phone seal v1"))


def reset_keys() -> None:
    """Forget cached keys (a test that changes PII_KEY)."""
    _master_key.cache_clear()
    _digest_hmac.cache_clear()
    _cipher.cache_clear()


def phone_digest(e164: str) -> str:
    """The keyed digest of a normalised phone (64 hex characters), the same for every
    call with the same key: what identities and lookups store and compare."""
    mac = _digest_hmac().copy()
    mac.update(e164.encode())
    return mac.hexdigest()


def last4(e164: str) -> str:
    return e164[-4:]


def seal_phone(e164: str) -> bytes:
    """The phone encrypted with AES-GCM: nonce (12 bytes) + ciphertext and tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _cipher().encrypt(nonce, e164.encode(), None)


def open_phone(sealed: bytes | memoryview) -> str:
    """The phone `seal_phone` sealed; raises cryptography's InvalidTag on a wrong key or a
    tampered value."""
    data = bytes(sealed)
    return _cipher().decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None).decode()


def mask_last4(last_four: str) -> str:
    """The one masked form of a phone: *******1234 (empty when there is no phone)."""
    return f"{MASK_PREFIX}{last_four}" if last_four else ""
