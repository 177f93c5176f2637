"""The bundle key: the bundle password, stretched with scrypt, encrypts secret values.

Secret values are encrypted with AES-SIV (deterministic authenticated encryption):
the same password, salt, value and context always give the same bytes, so
re-exporting an unchanged application gives a byte-identical bundle. The context
(``"table.column"``) is bound as associated data, so a secret moved to another
column does not decrypt; one from a bundle under another password or salt does
not either. The salt is derived from the application's entity types (or kept
from the bundle being replaced), so bundles of one application exported with
one password share a key: that is what keeps them comparable file by file.

No message or ``repr`` here ever holds a password, key bytes or secret plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from rehost.errors import BundleError, SecretError, UsageError, WrongPassword

KEY_BYTES = 64  # AES-SIV with two 256-bit AES keys
SALT_MIN_BYTES = 16
SALT_MAX_BYTES = 64
N_MIN = 2**14
N_MAX = 2**20
R_MAX = 16
P_MAX = 16
# scrypt needs about 128·n·r bytes of memory and n·r·p work: at most 1 GiB and
# 64 times the default work, so that a crafted bundle cannot stall a machine.
MEMORY_MAX = 2**23  # bound on n·r
WORK_MAX = 2**24  # bound on n·r·p

SECRET = "$secret"
BINARY = "binary"

_SALT_PREFIX = b"rehost bundle salt v1\0"
_CHECK_PLAIN = b"rehost-password-check"
_CHECK_AD = b"rehost-check"

WRONG_PASSWORD = (
    "The password does not open this bundle (its password check failed). Give the "
    "password the bundle was exported with: --password-file FILE or REHOST_PASSWORD."
)


def _show(value: Any) -> str:
    """A short repr of a (non-secret) manifest value for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _bad_kdf(field_name: str, must: str, value: Any) -> BundleError:
    return BundleError(
        f"The bundle's key-derivation setting '{field_name}' {must} (it is {_show(value)}): "
        "the manifest is damaged, or was not written by rehost."
    )


def _int_field(d: dict[str, Any], name: str, low: int, high: int) -> int:
    value = d.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad_kdf(name, f"must be a whole number from {low} to {high}", value)
    return value


@dataclass(frozen=True)
class KdfParams:
    """scrypt settings of a bundle, stored in its manifest (none of them secret)."""

    salt: bytes
    n: int = 2**15
    r: int = 8
    p: int = 1

    def to_json(self) -> dict[str, Any]:
        """The manifest form: ``{"kdf": "scrypt", "n", "r", "p", "salt": base64}``."""
        return {
            "kdf": "scrypt",
            "n": self.n,
            "r": self.r,
            "p": self.p,
            "salt": base64.b64encode(self.salt).decode("ascii"),
        }

    @classmethod
    def from_json(cls, d: Any) -> KdfParams:
        """Read and check the manifest form; ``BundleError`` names the bad field."""
        if not isinstance(d, dict):
            raise BundleError(
                "The bundle's key-derivation settings (kdf) are not a JSON object: the "
                "manifest is damaged, or was not written by rehost."
            )
        if d.get("kdf") != "scrypt":
            raise _bad_kdf("kdf", "must be 'scrypt'", d.get("kdf"))
        n = _int_field(d, "n", N_MIN, N_MAX)
        if n & (n - 1):
            raise _bad_kdf("n", f"must be a power of two from {N_MIN} to {N_MAX}", n)
        r = _int_field(d, "r", 1, R_MAX)
        p = _int_field(d, "p", 1, P_MAX)
        if n * r > MEMORY_MAX:
            raise _bad_kdf("r", f"times n must be at most {MEMORY_MAX} (1 GiB of memory)", r)
        if n * r * p > WORK_MAX:
            raise _bad_kdf("p", f"times n and r must be at most {WORK_MAX}", p)
        raw = d.get("salt")
        try:
            if not isinstance(raw, str):
                raise ValueError
            salt = base64.b64decode(raw, validate=True)
        except (ValueError, binascii.Error):
            raise _bad_kdf("salt", "must be base64 text", raw) from None
        if not SALT_MIN_BYTES <= len(salt) <= SALT_MAX_BYTES:
            raise _bad_kdf(
                "salt",
                f"must hold {SALT_MIN_BYTES} to {SALT_MAX_BYTES} bytes",
                f"{len(salt)} bytes",
            )
        return cls(salt=salt, n=n, r=r, p=p)


def derive_salt(identity: str) -> bytes:
    """A deterministic 16-byte salt from the application's identity.

    Deterministic on purpose: exports of the same application with the same
    password must be byte-identical.
    """
    return hashlib.sha256(_SALT_PREFIX + identity.encode("utf-8")).digest()[:SALT_MIN_BYTES]


def is_secret(obj: Any) -> bool:
    """Whether a document value is an encrypted secret: ``{"$secret": …[, "binary": …]}``."""
    return isinstance(obj, dict) and SECRET in obj and set(obj) <= {SECRET, BINARY}


def _password_bytes(password: str) -> bytes:
    if not isinstance(password, str) or not password:
        raise UsageError(
            "The bundle password is empty: give a non-empty password with "
            "--password-file FILE or REHOST_PASSWORD."
        )
    # NFC, so that the same password typed on different systems gives the same key.
    try:
        return unicodedata.normalize("NFC", password).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            "The bundle password is not valid Unicode text; use a password made of "
            "ordinary characters."
        ) from None


# Derived keys of this process, keyed by (keyed hash of the password, params).
# The hash key is random per process, so the dictionary holds no plain password hash.
_CACHE_MAX = 8
_CACHE_PEPPER = os.urandom(32)
_CACHE: dict[tuple[bytes, KdfParams], BundleKey] = {}


def clear_key_cache() -> None:
    """Forget every key derived in this process."""
    _CACHE.clear()


class BundleKey:
    """The key that encrypts a bundle's secrets. Make it with :meth:`derive`."""

    __slots__ = ("_siv", "params")

    def __init__(self, key: bytes, params: KdfParams) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a bundle key has {KEY_BYTES} bytes")
        self.params = params
        self._siv = AESSIV(key)

    def __repr__(self) -> str:
        return f"BundleKey(n={self.params.n}, r={self.params.r}, p={self.params.p})"

    @classmethod
    def derive(cls, password: str, params: KdfParams) -> BundleKey:
        """scrypt(password, params) → key; cached, so deriving twice is free."""
        pw = _password_bytes(password)
        ident = (hmac.new(_CACHE_PEPPER, pw, hashlib.sha256).digest(), params)
        cached = _CACHE.get(ident)
        if cached is not None:
            return cached
        kdf = Scrypt(salt=params.salt, length=KEY_BYTES, n=params.n, r=params.r, p=params.p)
        key = cls(kdf.derive(pw), params)
        while len(_CACHE) >= _CACHE_MAX:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[ident] = key
        return key

    def check_token(self) -> str:
        """A deterministic token that proves a password opens the bundle."""
        return base64.b64encode(self._siv.encrypt(_CHECK_PLAIN, [_CHECK_AD])).decode("ascii")

    def verify(self, check: str) -> None:
        """Raise ``WrongPassword`` unless ``check`` was made by this key."""
        try:
            if not isinstance(check, str):
                raise ValueError
            raw = base64.b64decode(check, validate=True)
        except (ValueError, binascii.Error):
            raise BundleError(
                "The bundle's password check is not base64 text: the manifest is damaged, "
                "or was not written by rehost."
            ) from None
        try:
            plain = self._siv.decrypt(raw, [_CHECK_AD])
        except (InvalidTag, ValueError):
            raise WrongPassword(WRONG_PASSWORD) from None
        if not hmac.compare_digest(plain, _CHECK_PLAIN):
            raise WrongPassword(WRONG_PASSWORD)

    def encrypt(self, value: str | bytes, context: str) -> dict[str, Any]:
        """Encrypt a secret for the column ``context`` (``"table.column"``); deterministic."""
        binary = not isinstance(value, str)
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
        elif isinstance(value, str):
            try:
                data = value.encode("utf-8")
            except UnicodeEncodeError:
                raise SecretError(
                    f"The secret for {context} is not valid Unicode text, so it cannot be "
                    "encrypted; store it as bytes, or fix it in the source."
                ) from None
        else:
            raise TypeError(
                f"a secret for {context} must be str or bytes, not {type(value).__name__}"
            )
        token = base64.b64encode(self._siv.encrypt(data, [context.encode("utf-8")]))
        out: dict[str, Any] = {SECRET: token.decode("ascii")}
        if binary:
            out[BINARY] = True
        return out

    def decrypt(self, obj: Any, context: str) -> str | bytes:
        """Inverse of :meth:`encrypt`; ``BundleError`` if altered or from another bundle."""
        bad = BundleError(
            f"The secret for {context} in this bundle cannot be decrypted: it was altered, "
            "or was encrypted under another password."
        )
        if not is_secret(obj):
            raise bad
        binary = obj.get(BINARY, False)
        token = obj[SECRET]
        if not isinstance(binary, bool) or not isinstance(token, str):
            raise bad
        try:
            raw = base64.b64decode(token, validate=True)
            data = self._siv.decrypt(raw, [context.encode("utf-8")])
            return data if binary else data.decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error):
            raise bad from None
