"""A fault-injecting TCP proxy on loopback, between a client and an S3 server.

Every request gets its own connection (the proxy forwards it with ``Connection:
close`` and closes after the answer), so each request is rolled for a fault: the
connection is reset at once, delayed, answered with an HTTP 503 SlowDown, or
passed on. Seeded, and stopped by the test.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter

SLOW_DOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
    b"Content-Length: 112\r\n\r\n"
    b'<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your '
    b"request rate.</Message></Error>   "
)


class FaultProxy:
    """Listen on 127.0.0.1; forward to ``upstream`` with faults."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        reset: float = 0.05,
        delay: float = 0.05,
        slow_down: float = 0.05,
        seed: int = 7,
    ) -> None:
        self.upstream = upstream
        self.odds = (reset, delay, slow_down)
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """The URL clients use instead of the server's."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop accepting and close the listener."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        self._thread.join(timeout=5)

    def _choose(self) -> str:
        with self.lock:
            roll = self.random.random()
        reset, delay, slow = self.odds
        if roll < reset:
            return "reset"
        if roll < reset + delay:
            return "delay"
        if roll < reset + delay + slow:
            return "slowdown"
        return "pass"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            fault = self._choose()
            with self.lock:
                self.counts[fault] += 1
            threading.Thread(target=self._serve, args=(client, fault), daemon=True).start()

    def _serve(self, client: socket.socket, fault: str) -> None:
        try:
            if fault == "reset":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                return
            client.settimeout(30)
            request = self._read_request(client)
            if request is None:
                client.close()
                return
            if fault == "slowdown":
                client.sendall(SLOW_DOWN)
                client.close()
                return
            if fault == "delay":
                time.sleep(0.3)
            server = socket.create_connection(self.upstream, timeout=30)
            server.sendall(request)
            while chunk := server.recv(65536):
                client.sendall(chunk)
            server.close()
            client.close()
        except OSError:
            with contextlib.suppress(OSError):
                client.close()

    @staticmethod
    def _read_request(client: socket.socket) -> bytes | None:
        """One whole request, rewritten to close the connection after its answer."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = 0
        kept = [lines[0]]
        for line in lines[1:]:
            name = line.split(b":", 1)[0].strip().lower()
            if name == b"content-length":
                length = int(line.split(b":", 1)[1])
            if name in (b"connection", b"keep-alive"):
                continue
            kept.append(line)
        kept.append(b"Connection: close")
        while len(body) < length:
            chunk = client.recv(65536)
            if not chunk:
                return None
            body += chunk
        return b"\r\n".join(kept) + b"\r\n\r\n" + body
