"""Bundle key, application ciphers and password sources."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

from rehost.crypto import (
    AppCipher,
    BundleKey,
    FernetCipher,
    KdfParams,
    PlaintextCipher,
    clear_key_cache,
    derive_salt,
    get_cipher,
    is_secret,
    read_password,
    resolve_key,
)
from rehost.crypto import ciphers as ciphers_mod
from rehost.errors import BundleError, SecretError, UsageError, WrongPassword

FAST_N = 2**14
PASSWORD = "correct horse battery staple"
SALT = derive_salt("app|users")


def params(salt: bytes = SALT) -> KdfParams:
    return KdfParams(salt=salt, n=FAST_N)


def key(password: str = PASSWORD, salt: bytes = SALT) -> BundleKey:
    return BundleKey.derive(password, params(salt))


# --- salt and KDF parameters -------------------------------------------------


def test_derive_salt_is_deterministic_16_bytes() -> None:
    assert derive_salt("a|b") == derive_salt("a|b")
    assert len(derive_salt("a|b")) == 16
    assert derive_salt("a|b") != derive_salt("a|c")


def test_derive_salt_matches_documented_formula() -> None:
    import hashlib

    expected = hashlib.sha256(b"rehost bundle salt v1\x00" + b"x").digest()[:16]
    assert derive_salt("x") == expected


def test_kdf_params_json_round_trip() -> None:
    p = KdfParams(salt=SALT, n=2**16, r=8, p=2)
    d = p.to_json()
    assert d == {
        "kdf": "scrypt",
        "n": 2**16,
        "r": 8,
        "p": 2,
        "salt": base64.b64encode(SALT).decode(),
    }
    assert KdfParams.from_json(json.loads(json.dumps(d))) == p


def test_kdf_params_defaults() -> None:
    p = KdfParams(salt=SALT)
    assert (p.n, p.r, p.p) == (2**15, 8, 1)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kdf": "argon2"}, "'kdf'"),
        ({"kdf": None}, "'kdf'"),
        ({"n": 2**14 + 1}, "'n'"),
        ({"n": 2**13}, "'n'"),
        ({"n": 2**21}, "'n'"),
        ({"n": "16384"}, "'n'"),
        ({"n": True}, "'n'"),
        ({"r": 0}, "'r'"),
        ({"r": 1000}, "'r'"),
        ({"p": 0}, "'p'"),
        ({"p": 1.5}, "'p'"),
        ({"n": 2**20, "r": 16}, "'r'"),
        ({"n": 2**20, "r": 8, "p": 16}, "'p'"),
        ({"salt": "not base64!"}, "'salt'"),
        ({"salt": base64.b64encode(b"short").decode()}, "'salt'"),
        ({"salt": 12}, "'salt'"),
        ({"salt": None}, "'salt'"),
    ],
)
def test_kdf_params_validation_names_the_field(change: dict[str, Any], field: str) -> None:
    d = {**params().to_json(), **change}
    with pytest.raises(BundleError) as err:
        KdfParams.from_json(d)
    assert field in str(err.value)


@pytest.mark.parametrize("missing", ["kdf", "n", "r", "p", "salt"])
def test_kdf_params_missing_field(missing: str) -> None:
    d = params().to_json()
    del d[missing]
    with pytest.raises(BundleError, match=f"'{missing}'"):
        KdfParams.from_json(d)


def test_kdf_params_not_a_dict() -> None:
    with pytest.raises(BundleError):
        KdfParams.from_json(["scrypt"])


# --- bundle key ----------------------------------------------------------------


def test_derive_is_cached_and_repr_hides_key() -> None:
    clear_key_cache()
    k1 = key()
    assert key() is k1
    text = repr(k1)
    assert PASSWORD not in text
    assert "n=16384" in text
    assert not hasattr(k1, "__dict__")  # nothing but params and the cipher object


def test_cache_distinguishes_passwords_and_params() -> None:
    assert key("one") is not key("two")
    assert key("one").check_token() != key("two").check_token()
    assert key(salt=derive_salt("other")).check_token() != key().check_token()


def test_empty_password_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        BundleKey.derive("", params())


def test_password_normalized_to_nfc() -> None:
    assert key("caf\u00e9").check_token() == key("cafe\u0301").check_token()


def test_encrypt_is_deterministic() -> None:
    # Derived afresh (cache cleared) to show determinism is not an artefact of caching.
    a = key().encrypt("s3cret", "users.password")
    clear_key_cache()
    b = key().encrypt("s3cret", "users.password")
    assert a == b
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert set(a) == {"$secret"}


def test_context_and_value_change_ciphertext() -> None:
    k = key()
    base = k.encrypt("s3cret", "users.password")
    assert k.encrypt("s3cret", "users.api_key") != base
    assert k.encrypt("s3cret!", "users.password") != base
    assert key("other password").encrypt("s3cret", "users.password") != base


def test_ciphertext_does_not_contain_plaintext() -> None:
    obj = key().encrypt("plainly-visible", "t.c")
    raw = base64.b64decode(obj["$secret"])
    assert b"plainly-visible" not in raw
    assert "plainly-visible" not in json.dumps(obj)


@pytest.mark.parametrize("value", ["", "ascii", "ünïcødé ✓ 🔑", "a\x00b", b"", b"\x00\xff\xfe"])
def test_round_trip(value: str | bytes) -> None:
    k = key()
    obj = k.encrypt(value, "t.c")
    assert obj.get("binary", False) is isinstance(value, bytes)
    out = k.decrypt(obj, "t.c")
    assert out == value
    assert type(out) is type(value)


def test_bytes_like_values_encrypt_as_binary() -> None:
    k = key()
    assert k.decrypt(k.encrypt(memoryview(b"abc"), "t.c"), "t.c") == b"abc"
    assert k.encrypt(bytearray(b"abc"), "t.c") == k.encrypt(b"abc", "t.c")


def test_encrypt_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        key().encrypt(12, "t.c")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.text(), st.binary()), context=st.text(min_size=1))
def test_round_trip_property(value: str | bytes, context: str) -> None:
    k = key()
    obj = k.encrypt(value, context)
    assert is_secret(obj)
    assert k.encrypt(value, context) == obj
    assert k.decrypt(obj, context) == value
    with pytest.raises(BundleError):
        k.decrypt(obj, context + "x")


def test_check_token_and_verify() -> None:
    k = key()
    token = k.check_token()
    assert token == key().check_token()
    k.verify(token)
    with pytest.raises(WrongPassword) as err:
        key("wrong password").verify(token)
    assert "--password-file" in str(err.value)
    assert PASSWORD not in str(err.value)
    assert "wrong password" not in str(err.value)


def test_verify_fails_for_other_salt_and_garbage() -> None:
    token = key().check_token()
    with pytest.raises(WrongPassword):
        key(salt=derive_salt("elsewhere")).verify(token)
    with pytest.raises(WrongPassword):
        key().verify(base64.b64encode(b"\x00" * 40).decode())
    with pytest.raises(WrongPassword):
        key().verify("")
    with pytest.raises(BundleError):
        key().verify("***not base64***")


def test_wrong_password_cannot_decrypt_secret() -> None:
    obj = key().encrypt("s3cret", "t.c")
    with pytest.raises(BundleError) as err:
        key("wrong").decrypt(obj, "t.c")
    assert "t.c" in str(err.value)
    assert "s3cret" not in str(err.value)


def _flip(token: str, i: int) -> str:
    raw = bytearray(base64.b64decode(token))
    raw[i % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("position", [0, 5, 16, -1])
def test_tampered_ciphertext_is_a_bundle_error(position: int) -> None:
    k = key()
    obj = k.encrypt("s3cret value", "users.password")
    bad = {"$secret": _flip(obj["$secret"], position)}
    with pytest.raises(BundleError) as err:
        k.decrypt(bad, "users.password")
    message = str(err.value)
    assert "users.password" in message
    assert "s3cret" not in message


@pytest.mark.parametrize(
    "obj",
    [
        {"$secret": "***"},
        {"$secret": 3},
        {"$secret": base64.b64encode(b"short").decode()},
        {"$secret": "", "binary": "yes"},
        {"$secret": "", "extra": 1},
        {"value": "x"},
        "plain string",
        None,
    ],
)
def test_malformed_secret_is_a_bundle_error(obj: Any) -> None:
    with pytest.raises(BundleError):
        key().decrypt(obj, "t.c")


def test_binary_flag_mismatch_on_invalid_utf8_is_a_bundle_error() -> None:
    k = key()
    obj = k.encrypt(b"\xff\xfe", "t.c")
    with pytest.raises(BundleError):
        k.decrypt({"$secret": obj["$secret"]}, "t.c")


def test_is_secret() -> None:
    assert is_secret({"$secret": "abc"})
    assert is_secret({"$secret": "abc", "binary": True})
    assert not is_secret({"$secret": "abc", "other": 1})
    assert not is_secret({"binary": True})
    assert not is_secret({})
    assert not is_secret("$secret")
    assert not is_secret(["$secret"])


# --- application ciphers -----------------------------------------------------


def test_plaintext_cipher_is_identity() -> None:
    c = get_cipher("plaintext", None, "source")
    assert isinstance(c, PlaintextCipher)
    assert isinstance(c, AppCipher)
    assert c.name == "plaintext"
    for v in ["x", b"y", None]:
        assert c.decrypt(v) == v
        assert c.encrypt(v) == v
    assert c.decrypt(memoryview(b"z")) == b"z"


@pytest.fixture
def fernet_key(monkeypatch: pytest.MonkeyPatch) -> str:
    k = Fernet.generate_key().decode()
    monkeypatch.setenv("REHOST_TEST_FERNET", k)
    return k


def test_fernet_round_trip_str_and_bytes(fernet_key: str) -> None:
    c = get_cipher("fernet", "env:REHOST_TEST_FERNET", "source")
    assert isinstance(c, FernetCipher)
    assert c.name == "fernet"
    token = c.encrypt("pässword")
    assert isinstance(token, str)
    assert c.decrypt(token) == "pässword"
    btoken = c.encrypt(b"\x00\xff")
    assert isinstance(btoken, bytes)
    assert c.decrypt(btoken) == b"\x00\xff"
    assert c.decrypt(memoryview(btoken)) == b"\x00\xff"
    assert c.encrypt(None) is None
    assert c.decrypt(None) is None


def test_fernet_reads_tokens_made_by_the_application(fernet_key: str) -> None:
    app = Fernet(fernet_key.encode())
    c = get_cipher("fernet", "env:REHOST_TEST_FERNET", "source")
    assert c.decrypt(app.encrypt(b"hello").decode()) == "hello"
    assert c.decrypt(app.encrypt(b"hello")) == b"hello"
    # Text token with non-UTF-8 plaintext: bytes come back.
    assert c.decrypt(app.encrypt(b"\xff").decode()) == b"\xff"


def test_fernet_wrong_key_is_a_secret_error_without_the_value(fernet_key: str) -> None:
    token = Fernet(fernet_key.encode()).encrypt(b"top-secret-plaintext").decode()
    other = Fernet.generate_key().decode()
    c = FernetCipher(other)
    with pytest.raises(SecretError) as err:
        c.decrypt(token)
    message = str(err.value)
    assert "the source application key" in message
    assert "top-secret-plaintext" not in message
    assert token not in message
    assert other not in message and fernet_key not in message


def test_fernet_garbage_token_and_wrong_type(fernet_key: str) -> None:
    c = FernetCipher(fernet_key)
    for bad in ["not a token", "ünï", b"\x00\x01"]:
        with pytest.raises(SecretError):
            c.decrypt(bad)
    with pytest.raises(SecretError):
        c.decrypt(12345)


def test_fernet_target_role_in_message(fernet_key: str) -> None:
    c = get_cipher("fernet", "env:REHOST_TEST_FERNET", "target")
    with pytest.raises(SecretError, match="the target application key"):
        c.decrypt(Fernet(Fernet.generate_key()).encrypt(b"x"))


def test_fernet_key_list_rotates(monkeypatch: pytest.MonkeyPatch) -> None:
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_token = Fernet(old.encode()).encrypt(b"legacy").decode()
    monkeypatch.setenv("REHOST_TEST_KEYS", f"{new}, {old}")
    c = get_cipher("fernet", "env:REHOST_TEST_KEYS", "source")
    assert c.decrypt(old_token) == "legacy"
    fresh = c.encrypt("current")
    assert Fernet(new.encode()).decrypt(fresh.encode()) == b"current"
    with pytest.raises(Exception):  # noqa: B017 - the old key must not be the encrypting one
        Fernet(old.encode()).decrypt(fresh.encode())


def test_fernet_bad_key_does_not_echo_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHOST_TEST_BADKEY", "definitely-not-a-fernet-key")
    with pytest.raises(UsageError) as err:
        get_cipher("fernet", "env:REHOST_TEST_BADKEY", "target")
    assert "definitely-not-a-fernet-key" not in str(err.value)
    assert "target" in str(err.value)


def test_fernet_without_key_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="secrets.source_key"):
        get_cipher("fernet", None, "source")


def test_resolve_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHOST_TEST_K", "abc\n")
    assert resolve_key("env:REHOST_TEST_K", "source") == "abc"
    monkeypatch.delenv("REHOST_TEST_MISSING", raising=False)
    with pytest.raises(UsageError) as err:
        resolve_key("env:REHOST_TEST_MISSING", "target")
    assert "REHOST_TEST_MISSING" in str(err.value)
    assert "target" in str(err.value)


def test_resolve_key_file(tmp_path: Path) -> None:
    f = tmp_path / "app.key"
    f.write_text("  the-key \n", encoding="utf-8")
    assert resolve_key(f"file:{f}", "source") == "the-key"
    with pytest.raises(UsageError, match="missing.key"):
        resolve_key(f"file:{tmp_path / 'missing.key'}", "source")
    empty = tmp_path / "empty.key"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(UsageError, match="empty"):
        resolve_key(f"file:{empty}", "source")


@pytest.mark.parametrize("spec", ["raw-key-material", "env:", "file:", "vault:x", ""])
def test_resolve_key_other_forms_refused_without_echo(spec: str) -> None:
    with pytest.raises(UsageError) as err:
        resolve_key(spec, "source")
    message = str(err.value)
    assert "env:VAR" in message and "file:PATH" in message
    assert "raw-key-material" not in message and "vault" not in message


@dataclass
class FakeEntryPoint:
    name: str
    value: str
    target: Any

    def load(self) -> Any:
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


class Rot13Cipher:
    name = "rot13"

    def __init__(self, key: str | None) -> None:
        self.key = key

    def decrypt(self, stored: Any) -> str | bytes | None:
        import codecs

        return None if stored is None else codecs.decode(stored, "rot13")

    def encrypt(self, plain: str | bytes | None) -> Any:
        import codecs

        return None if plain is None else codecs.encode(str(plain), "rot13")


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> list[FakeEntryPoint]:
    found: list[FakeEntryPoint] = []
    monkeypatch.setattr(ciphers_mod, "_REGISTRY", dict(ciphers_mod._REGISTRY))

    def fake_entry_points(*, group: str) -> list[FakeEntryPoint]:
        assert group == "rehost.ciphers"
        return list(found)

    monkeypatch.setattr(ciphers_mod, "entry_points", fake_entry_points)
    return found


def test_plugin_found_through_entry_points(plugins: list[FakeEntryPoint]) -> None:
    plugins.append(FakeEntryPoint("rot13", "acme.ciphers:Rot13Cipher", Rot13Cipher))
    c = get_cipher("rot13", None, "source")
    assert isinstance(c, Rot13Cipher)
    assert c.decrypt("uryyb") == "hello"
    assert c.encrypt("hello") == "uryyb"
    plugins.clear()  # now registered: no second entry-point lookup needed
    assert isinstance(get_cipher("rot13", None, "source"), Rot13Cipher)


def test_plugin_gets_resolved_key(plugins: list[FakeEntryPoint], tmp_path: Path) -> None:
    plugins.append(FakeEntryPoint("rot13", "acme.ciphers:Rot13Cipher", Rot13Cipher))
    f = tmp_path / "k"
    f.write_text("sekrit\n")
    c = get_cipher("rot13", f"file:{f}", "target")
    assert isinstance(c, Rot13Cipher) and c.key == "sekrit"


def test_unknown_cipher_lists_known_names(plugins: list[FakeEntryPoint]) -> None:
    plugins.append(FakeEntryPoint("rot13", "acme.ciphers:Rot13Cipher", Rot13Cipher))
    with pytest.raises(UsageError) as err:
        get_cipher("aes-gcm-custom", None, "source")
    message = str(err.value)
    assert "'aes-gcm-custom'" in message
    for name in ("fernet", "plaintext", "rot13"):
        assert name in message


def test_broken_plugin_is_reported(plugins: list[FakeEntryPoint]) -> None:
    plugins.append(FakeEntryPoint("broken", "acme.broken:make", ImportError("no module acme")))
    with pytest.raises(UsageError) as err:
        get_cipher("broken", None, "source")
    assert "acme.broken:make" in str(err.value)
    assert "ImportError" in str(err.value)


def test_builtin_names_are_not_shadowed(plugins: list[FakeEntryPoint]) -> None:
    plugins.append(FakeEntryPoint("plaintext", "evil:Cipher", Rot13Cipher))
    assert isinstance(get_cipher("plaintext", None, "source"), PlaintextCipher)


# --- bundle password ---------------------------------------------------------


@pytest.fixture
def no_env_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REHOST_PASSWORD", raising=False)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("pw\n", "pw"),
        ("pw\r\n", "pw"),
        ("pw", "pw"),
        ("pw\n\n", "pw\n"),
        (" spaced pw \n", " spaced pw "),
    ],
)
def test_read_password_from_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, expected: str
) -> None:
    monkeypatch.setenv("REHOST_PASSWORD", "from-env")  # the file comes first
    f = tmp_path / "pw.txt"
    f.write_bytes(content.encode())
    assert read_password(f, confirm=False, interactive=False) == expected


@pytest.mark.parametrize("content", [b"", b"\n"])
def test_read_password_empty_file(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "pw.txt"
    f.write_bytes(content)
    with pytest.raises(UsageError, match="pw.txt"):
        read_password(f, confirm=False, interactive=False)


def test_read_password_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nope.txt"):
        read_password(tmp_path / "nope.txt", confirm=False, interactive=False)
    with pytest.raises(UsageError, match=str(tmp_path.name)):
        read_password(tmp_path, confirm=False, interactive=False)  # a directory


def test_read_password_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHOST_PASSWORD", "env pw")
    assert read_password(None, confirm=True, interactive=False) == "env pw"


def test_read_password_non_interactive_error(no_env_password: None) -> None:
    with pytest.raises(UsageError) as err:
        read_password(None, confirm=False, interactive=False)
    assert "--password-file" in str(err.value)
    assert "REHOST_PASSWORD" in str(err.value)


def test_read_password_empty_env_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHOST_PASSWORD", "")
    with pytest.raises(UsageError):
        read_password(None, confirm=False, interactive=False)


def test_read_password_default_not_interactive_without_tty(
    no_env_password: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NotATty:
        def isatty(self) -> bool:
            return False

    monkeypatch.setattr("sys.stdin", NotATty())
    monkeypatch.setattr("getpass.getpass", lambda *a, **k: pytest.fail("prompted"))
    with pytest.raises(UsageError):
        read_password(None, confirm=False)


def test_read_password_prompt(no_env_password: None, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["typed", "typed"])
    monkeypatch.setattr("getpass.getpass", lambda *a, **k: next(answers))
    assert read_password(None, confirm=True, interactive=True) == "typed"


def test_read_password_prompt_mismatch(
    no_env_password: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["typed", "typo"])
    monkeypatch.setattr("getpass.getpass", lambda *a, **k: next(answers))
    with pytest.raises(UsageError) as err:
        read_password(None, confirm=True, interactive=True)
    assert "typed" not in str(err.value) and "typo" not in str(err.value)


def test_read_password_prompt_without_confirm_asks_once(
    no_env_password: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake(prompt: str, stream: Any = None) -> str:
        calls.append(prompt)
        return "once"

    monkeypatch.setattr("getpass.getpass", fake)
    assert read_password(None, confirm=False, interactive=True) == "once"
    assert len(calls) == 1
