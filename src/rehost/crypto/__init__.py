"""Secrets: the bundle key that encrypts them in a bundle, the application ciphers
that store them in a database, and where the bundle password comes from."""

from __future__ import annotations

from rehost.crypto.bundle_key import (
    BundleKey,
    KdfParams,
    clear_key_cache,
    derive_salt,
    is_secret,
)
from rehost.crypto.ciphers import (
    ENTRY_POINT_GROUP,
    AppCipher,
    CipherFactory,
    FernetCipher,
    PlaintextCipher,
    get_cipher,
    known_ciphers,
    register_cipher,
    resolve_key,
)
from rehost.crypto.password import read_password

__all__ = [
    "ENTRY_POINT_GROUP",
    "AppCipher",
    "BundleKey",
    "CipherFactory",
    "FernetCipher",
    "KdfParams",
    "PlaintextCipher",
    "clear_key_cache",
    "derive_salt",
    "get_cipher",
    "is_secret",
    "known_ciphers",
    "read_password",
    "register_cipher",
    "resolve_key",
]
