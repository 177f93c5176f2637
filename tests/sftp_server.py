"""A real SFTP server on loopback for the tests: asyncssh's server, rooted at a directory.

Run as a separate process so a test can kill it (SIGKILL) mid-run and start it
again on the same port:

    python tests/sftp_server.py ROOT HOST_KEY PASSWORD [PORT [no-hardlink]]

It prints the port it listens on, then serves until killed. Password auth for
user ``rehost``; the client sees ROOT as ``/``. With ``no-hardlink`` it neither
offers nor serves the ``hardlink@openssh.com`` extension (as some servers do).
"""

from __future__ import annotations

import asyncio
import os
import sys

import asyncssh


class _Server(asyncssh.SSHServer):
    def __init__(self, password: str) -> None:
        self.password = password

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "rehost" and password == self.password


class _Rooted(asyncssh.SFTPServer):
    """Paths under ``root``; link texts verbatim, as OpenSSH's sftp-server keeps them
    (asyncssh's own chroot rewrites them to absolute paths)."""

    def __init__(self, chan: asyncssh.SSHServerChannel, root: bytes) -> None:
        super().__init__(chan)
        self._root = root

    def map_path(self, path: bytes) -> bytes:
        rel = os.path.normpath(b"/" + path).lstrip(b"/")
        return self._root + b"/" + rel if rel else self._root

    def reverse_map_path(self, path: bytes) -> bytes:
        if path == self._root:
            return b"/"
        if path.startswith(self._root + b"/"):
            return path[len(self._root) :]
        raise asyncssh.SFTPNoSuchFile("outside the root")

    def readlink(self, path: bytes) -> bytes:
        return os.readlink(self.map_path(path))

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        os.symlink(oldpath, self.map_path(newpath))


class _NoHardlink(_Rooted):
    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("hard links not supported")


def _without_hardlink() -> None:
    """The extension is no longer listed in the server's version message."""
    handler = asyncssh.sftp.SFTPServerHandler
    handler._extensions = [e for e in handler._extensions if e[0] != b"hardlink@openssh.com"]


async def serve(root: str, host_key: str, password: str, port: int, hardlink: bool) -> None:
    sftp = _Rooted if hardlink else _NoHardlink
    if not hardlink:
        _without_hardlink()
    server = await asyncssh.listen(
        "127.0.0.1",
        port,
        server_host_keys=[host_key],
        server_factory=lambda: _Server(password),
        sftp_factory=lambda chan: sftp(chan, os.fsencode(os.path.realpath(root))),
        allow_scp=False,
        reuse_address=True,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.wait_closed()


if __name__ == "__main__":
    root, key, pw = sys.argv[1:4]
    port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    asyncio.run(serve(root, key, pw, port, hardlink="no-hardlink" not in sys.argv[5:]))
