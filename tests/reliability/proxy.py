"""A loopback TCP proxy in front of the test server that loses the answer to a repair's COMMIT.

It forwards each client's traffic to the server (a Unix socket or a TCP address), reading the
client's side message by message (PostgreSQL frontend protocol 3).  Once a client has sent a
message that names ``ca_plan`` (the repair transaction's table), its next simple-query
``COMMIT`` is

* ``after``: forwarded; the client's connection is cut at once, the server's answer read and
  dropped, then the server's connection closed - the COMMIT happened, its answer was lost;
* ``before``: not forwarded; both connections are cut - the transaction can only roll back.

Only the first such COMMIT is cut; every other connection (the tool reconnecting to find out)
passes through untouched.  Clients must connect with ``sslmode=disable``.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import conninfo

_PROTOCOL_3 = 196608


class CommitCutter:
    """The proxy; use :func:`commit_cutter`."""

    def __init__(self, upstream_dsn: str, mode: str) -> None:
        assert mode in ("after", "before")
        params = conninfo.conninfo_to_dict(upstream_dsn)
        host, port = params.get("host") or "/tmp", int(params.get("port") or 5432)
        self.upstream: tuple[int, object] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else (socket.AF_INET, (host, port)))
        self.mode = mode
        self.cut = threading.Event()  # set once a COMMIT was cut
        self._armed_once = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def dsn(self, dsn: str) -> str:
        """``dsn`` pointed at the proxy (loopback TCP, no TLS)."""
        params = conninfo.conninfo_to_dict(dsn)
        params.update(host="127.0.0.1", port=str(self.port), sslmode="disable", gssencmode="disable")
        return conninfo.make_conninfo(**params)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            family, address = self.upstream
            server = socket.socket(family, socket.SOCK_STREAM)
            server.connect(address)
            session = _Session(self, client, server)
            for target in (session.client_to_server, session.server_to_client):
                thread = threading.Thread(target=target, daemon=True)
                thread.start()
                self._threads.append(thread)

    def take_the_cut(self) -> bool:
        """True for the one COMMIT this proxy cuts."""
        with self._armed_once:
            if self.cut.is_set():
                return False
            self.cut.set()
            return True


class _Session:
    """One client connection and its server connection."""

    def __init__(self, proxy: CommitCutter, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.drop_answers = threading.Event()
        self.answer_seen = threading.Event()

    def client_to_server(self) -> None:
        buffer, started, armed = b"", False, False
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                buffer += data
                while True:
                    message, buffer, started = _next_message(buffer, started)
                    if message is None:
                        break
                    if b"ca_plan" in message:
                        armed = True
                    if armed and message[:1] == b"Q" and message[5:].rstrip(b"\0").strip().upper() == b"COMMIT" \
                            and self.proxy.take_the_cut():
                        self._cut(message)
                        return
                    self.server.sendall(message)
        except OSError:
            pass
        _close(self.server)

    def _cut(self, commit: bytes) -> None:
        self.drop_answers.set()
        if self.proxy.mode == "after":
            self.server.sendall(commit)
            _close(self.client)
            self.answer_seen.wait(60)  # the server has committed and answered: now lose the server too
        else:
            _close(self.client)
        _close(self.server)

    def server_to_client(self) -> None:
        try:
            while True:
                data = self.server.recv(65536)
                if not data:
                    break
                if self.drop_answers.is_set():
                    self.answer_seen.set()
                    continue
                self.client.sendall(data)
        except OSError:
            pass
        self.answer_seen.set()
        _close(self.client)


def _next_message(buffer: bytes, started: bool) -> tuple[bytes | None, bytes, bool]:
    """The next whole client message of ``buffer`` (None if incomplete), the rest, whether the
    startup message has been seen (before it, messages have no type byte)."""
    if not started:
        if len(buffer) < 8:
            return None, buffer, started
        length, code = struct.unpack("!ii", buffer[:8])
        if len(buffer) < length:
            return None, buffer, started
        return buffer[:length], buffer[length:], code == _PROTOCOL_3
    if len(buffer) < 5:
        return None, buffer, started
    length = struct.unpack("!i", buffer[1:5])[0] + 1
    if len(buffer) < length:
        return None, buffer, started
    return buffer[:length], buffer[length:], started


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@contextmanager
def commit_cutter(upstream_dsn: str, mode: str) -> Iterator[CommitCutter]:
    """A :class:`CommitCutter` for the server of ``upstream_dsn``, closed afterwards."""
    proxy = CommitCutter(upstream_dsn, mode)
    try:
        yield proxy
    finally:
        proxy.close()
