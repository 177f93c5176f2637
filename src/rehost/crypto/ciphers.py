"""Application ciphers: how an application stores its secret columns.

A cipher turns a stored value into plaintext (on export) and plaintext into a
stored value (on import). Ciphers come from a registry of factories
``(key: str | None) -> AppCipher``. The built-ins register themselves with
:func:`register_cipher`; third-party ciphers are found through the entry-point
group ``rehost.ciphers`` and registered the same way when first asked for.

Optional extras a factory or cipher may have:

* ``factory.needs_key = True``: :func:`get_cipher` refuses to build it without a key;
* ``factory.takes_role = True``: it is called as ``factory(key, role=role)``, with
  role ``"source"`` or ``"target"``, for its messages.

Keys are never written in a profile: a key spec is ``env:VAR`` or ``file:PATH``.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from rehost.errors import SecretError, UsageError

ENTRY_POINT_GROUP = "rehost.ciphers"


@runtime_checkable
class AppCipher(Protocol):
    """How one application stores its secret values."""

    name: str

    def decrypt(self, stored: Any) -> str | bytes | None:
        """Stored value → plaintext; ``None`` passes through."""
        ...

    def encrypt(self, plain: str | bytes | None) -> Any:
        """Plaintext → stored value; ``None`` passes through."""
        ...


CipherFactory = Callable[[str | None], AppCipher]

_REGISTRY: dict[str, CipherFactory] = {}


def register_cipher(name: str, factory: CipherFactory) -> None:
    """Make ``factory`` the cipher called ``name`` (the first registration wins)."""
    _REGISTRY.setdefault(name, factory)


def known_ciphers() -> list[str]:
    """Names of the registered ciphers and of the installed plugins."""
    names = set(_REGISTRY)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


class PlaintextCipher:
    """The application stores secrets as they are."""

    name = "plaintext"

    def decrypt(self, stored: Any) -> str | bytes | None:
        if isinstance(stored, bytearray | memoryview):
            return bytes(stored)
        return stored  # type: ignore[no-any-return]

    def encrypt(self, plain: str | bytes | None) -> Any:
        return plain


class FernetCipher:
    """The application stores Fernet tokens (``cryptography.fernet``).

    ``key`` holds one key or several separated by commas: the first encrypts,
    all are tried when decrypting (as ``MultiFernet`` does).
    """

    name = "fernet"

    def __init__(self, key: str, role: str = "source") -> None:
        self.role = role
        keys = [k.strip() for k in key.split(",") if k.strip()]
        if not keys:
            raise UsageError(f"The {role} application key is empty.")
        fernets = []
        for i, k in enumerate(keys, 1):
            try:
                fernets.append(Fernet(k))
            except (ValueError, TypeError, binascii.Error):
                which = (
                    f"Key {i} of the {role} application keys"
                    if len(keys) > 1
                    else f"The {role} application key"
                )
                raise UsageError(
                    f"{which} is not a Fernet key (32 url-safe base64-encoded bytes): check "
                    f"that secrets.{role}_key gives the key the application uses."
                ) from None
        self._fernet = MultiFernet(fernets)

    def __repr__(self) -> str:
        return f"FernetCipher(role={self.role!r})"

    def decrypt(self, stored: Any) -> str | bytes | None:
        if stored is None:
            return None
        as_text = isinstance(stored, str)
        if isinstance(stored, bytearray | memoryview):
            stored = bytes(stored)
        if not isinstance(stored, str | bytes):
            raise SecretError(
                f"A stored secret is a {type(stored).__name__}, not a Fernet token: check "
                "that this column holds values encrypted by the application."
            )
        try:
            plain = self._fernet.decrypt(stored)
        except (InvalidToken, ValueError, TypeError):
            raise SecretError(
                f"A stored secret does not decrypt with the {self.role} application key: "
                f"check that secrets.{self.role}_key gives the key this application encrypts "
                "with (after a key rotation, list the old keys after the new one, separated "
                "by commas), and that this column holds Fernet tokens."
            ) from None
        if as_text:
            try:
                return plain.decode("utf-8")
            except UnicodeDecodeError:
                return plain
        return plain

    def encrypt(self, plain: str | bytes | None) -> Any:
        if plain is None:
            return None
        if isinstance(plain, str):
            return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")
        return self._fernet.encrypt(bytes(plain))


def _plaintext_factory(key: str | None) -> AppCipher:
    return PlaintextCipher()


class _FernetFactory:
    needs_key = True
    takes_role = True

    def __call__(self, key: str | None, role: str = "source") -> AppCipher:
        if key is None:
            raise UsageError(f"The fernet cipher needs the {role} application key.")
        return FernetCipher(key, role)


register_cipher("plaintext", _plaintext_factory)
register_cipher("fernet", _FernetFactory())


def resolve_key(spec: str, role: str) -> str:
    """The key named by ``env:VAR`` or ``file:PATH`` (never the key itself)."""
    how, _, where = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if how == "env" and where:
        value = os.environ.get(where, "").strip()
        if not value:
            raise UsageError(
                f"The {role} application key is to come from the environment variable "
                f"{where}, which is not set or empty: set it, or change secrets.{role}_key."
            )
        return value
    if how == "file" and where:
        path = Path(where).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise UsageError(
                f"The {role} application key file {path} cannot be read ({reason}): "
                f"check the path in secrets.{role}_key."
            ) from None
        if not value:
            raise UsageError(f"The {role} application key file {path} is empty.")
        return value
    # The spec is not echoed: it may be the key itself.
    raise UsageError(
        f"secrets.{role}_key must be env:VAR or file:PATH, naming where the {role} "
        "application key is: keys are never written in a profile."
    )


def _load_plugin(name: str) -> tuple[CipherFactory | None, list[str]]:
    """Load the plugin called ``name``; also return why plugins of that name failed."""
    failures: list[str] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name != name:
            continue
        try:
            factory = ep.load()
        except Exception as exc:  # a broken plugin must not hide the real problem
            failures.append(f"{ep.value} failed to load ({type(exc).__name__}: {exc})")
            continue
        if not callable(factory):
            failures.append(f"{ep.value} is not a cipher factory")
            continue
        register_cipher(name, factory)
        return factory, failures
    return None, failures


def get_cipher(name: str, key_spec: str | None, role: str) -> AppCipher:
    """The cipher ``name`` with the key named by ``key_spec``, for ``role`` (source/target)."""
    factory = _REGISTRY.get(name)
    failures: list[str] = []
    if factory is None:
        factory, failures = _load_plugin(name)
    if factory is None:
        known = ", ".join(known_ciphers())
        why = f" The plugin {name!r}: " + "; ".join(failures) + "." if failures else ""
        raise UsageError(
            f"Unknown cipher {name!r} in secrets.cipher: the known ciphers are {known} "
            f"(built in, or from installed '{ENTRY_POINT_GROUP}' plugins).{why}"
        )
    key = resolve_key(key_spec, role) if key_spec is not None else None
    if key is None and getattr(factory, "needs_key", False):
        raise UsageError(
            f"The {name} cipher needs the {role} application key: set secrets.{role}_key "
            "in the profile to env:VAR or file:PATH."
        )
    if getattr(factory, "takes_role", False):
        return factory(key, role=role)  # type: ignore[call-arg]
    return factory(key)
