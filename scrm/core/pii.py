"""Phone numbers at rest: a keyed digest for lookups, a sealed copy for sending.

Nothing stores a phone in plain text. `phone_digest` (HMAC-SHA256) answers "who holds
this number" without revealing it; `last4` is kept beside it for display and "last four
digits" searches; `seal_phone` encrypts the number (AES-256-GCM, a random nonce per value)
for the few paths that need it back: sending an SMS and the audited "show full number".

Both keys come from `settings.PII_KEY` (env `SCRM_PII_KEY`), each under its own label, so
a leaked digest key never opens a sealed phone.

Rotation: `settings.PII_PREVIOUS_KEYS` (env `SCRM_PII_PREVIOUS_KEYS`) lists the keys used
before, most recent first. New digests and seals always use the current key; a sealed
value starts with a format byte and the id of the key that sealed it, so `open_phone`
goes straight to that key; values sealed before ids existed (nonce first, no prefix) are
tried with every known key, current first: whichever opens one sealed it. Lookups compare
`phone_digests` (the number's digest under every known key) until `manage.py
rotate_pii_key` has moved every stored value to the current key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

NONCE_BYTES = 12
# A sealed value today: SEAL_FORMAT, the sealing key's id, the nonce, ciphertext and tag.
SEAL_FORMAT = b"\x01"
KEY_ID_BYTES = 4
PREFIX_BYTES = len(SEAL_FORMAT) + KEY_ID_BYTES
# Shown in place of a phone everywhere: the last four digits only (we keep nothing else
# readable without decrypting).
MASK_PREFIX = "*******"
KEY_SETTINGS = frozenset({"PII_KEY", "PII_PREVIOUS_KEYS", "SECRET_KEY"})


@dataclass(frozen=True)
class _Key:
    key_id: bytes
    digest: hmac.HMAC
    cipher: AESGCM


@dataclass(frozen=True)
class Opened:
    """A sealed value opened: the number, and whether it is sealed as `seal_phone` seals
    today (the current key, with its id), i.e. needs no re-sealing."""

    phone: str
    current: bool


def _derived_master() -> bytes:
    # Development and tests: derived from SECRET_KEY under a fixed label (check --deploy
    # warns when production runs like this).
    return hmac.new(settings.SECRET_KEY.encode(), b"scrm pii key v1", hashlib.sha256).digest()


def _key(master: bytes) -> _Key:
    def subkey(label: bytes) -> bytes:
        return hmac.new(master, label, hashlib.sha256).digest()

    return _Key(
        # Under its own label: the id names a key without telling anything about it.
        key_id=subkey(b"key id v1")[:KEY_ID_BYTES],
        # Copying a keyed HMAC skips re-deriving the key pads: imports digest every row.
        digest=hmac.new(subkey(b"phone digest v1"), digestmod=hashlib.sha256),
        cipher=AESGCM(subkey(b"phone seal v1")),
    )


def _masters() -> list[bytes]:
    current = settings.PII_KEY.encode() if settings.PII_KEY else _derived_master()
    previous = [key.encode() for key in getattr(settings, "PII_PREVIOUS_KEYS", ()) if key]
    return [current, *previous]


@cache
def _keyring() -> tuple[_Key, ...]:
    """The current key first, then the previous ones (a key listed twice counts once)."""
    return tuple(_key(master) for master in dict.fromkeys(_masters()))


@cache
def _by_id() -> dict[bytes, list[_Key]]:
    # A list: two keys may share a 4-byte id (one chance in four billion).
    ring: dict[bytes, list[_Key]] = {}
    for key in _keyring():
        ring.setdefault(key.key_id, []).append(key)
    return ring


def reset_keys() -> None:
    """Forget cached keys (done on every change of a key setting, see below)."""
    _keyring.cache_clear()
    _by_id.cache_clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # override_settings in tests: the derived keys follow the settings.
    if setting in KEY_SETTINGS:
        reset_keys()


def previous_keys_configured() -> bool:
    return len(_keyring()) > 1


def current_key_also_previous() -> bool:
    """SCRM_PII_KEY is listed among the previous keys too (a rotation not done yet)."""
    current, *previous = _masters()
    return current in previous


def _digest(key: _Key, e164: str) -> str:
    mac = key.digest.copy()
    mac.update(e164.encode())
    return mac.hexdigest()


def phone_digest(e164: str) -> str:
    """The keyed digest of a normalised phone (64 hex characters) under the current key,
    the same for every call: what identities and lookups store."""
    return _digest(_keyring()[0], e164)


def phone_digests(e164: str) -> tuple[str, ...]:
    """The number's digest under every known key, current first: what a lookup compares
    while rows may still hold a previous key's digest."""
    return tuple(_digest(key, e164) for key in _keyring())


def previous_phone_digests(e164: str) -> tuple[str, ...]:
    """The number's digests under the previous keys only (none outside a rotation)."""
    ring = _keyring()
    return tuple(_digest(key, e164) for key in ring[1:]) if len(ring) > 1 else ()


def last4(e164: str) -> str:
    return e164[-4:]


def phone_columns(e164: str) -> tuple[str, str, bytes | None]:
    """A normalised phone (or "") as the member columns that keep it: digest, last four
    digits, sealed copy."""
    if not e164:
        return "", "", None
    return phone_digest(e164), last4(e164), seal_phone(e164)


def seal_phone(e164: str) -> bytes:
    """The phone encrypted with AES-GCM under the current key: format byte, key id,
    nonce (12 bytes), ciphertext and tag."""
    key = _keyring()[0]
    nonce = os.urandom(NONCE_BYTES)
    return SEAL_FORMAT + key.key_id + nonce + key.cipher.encrypt(nonce, e164.encode(), None)


def _decrypt(key: _Key, data: bytes) -> str:
    return key.cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None).decode()


def unseal(sealed: bytes | memoryview) -> Opened:
    """Open a sealed value with the key it names, or (a value sealed before key ids) with
    each known key in turn; raises cryptography's InvalidTag when no known key opens it
    (a removed key, a tampered value)."""
    data = bytes(sealed)
    if data[:1] == SEAL_FORMAT:
        for key in _by_id().get(data[1:PREFIX_BYTES], ()):
            try:
                phone = _decrypt(key, data[PREFIX_BYTES:])
            except (InvalidTag, ValueError):
                # A nonce-first value may start with these bytes by chance: tried below.
                continue
            return Opened(phone, key is _keyring()[0])
    for key in _keyring():
        try:
            return Opened(_decrypt(key, data), False)
        except (InvalidTag, ValueError):
            continue
    raise InvalidTag


def open_phone(sealed: bytes | memoryview) -> str:
    """The phone `seal_phone` sealed (under any known key); raises cryptography's
    InvalidTag on an unknown key or a tampered value."""
    return unseal(sealed).phone


def mask_last4(last_four: str) -> str:
    """The one masked form of a phone: *******1234 (empty when there is no phone)."""
    return f"{MASK_PREFIX}{last_four}" if last_four else ""
