"""A Waitress WSGI server on 127.0.0.1 in a background thread, with a stop that really stops.

Waitress (a production WSGI server: a thread pool, HTTP/1.1 keep-alive) runs until every connection
closes; this loop also stops on request, closing the listener and kept-alive connections from the
thread that polls them.
"""

from __future__ import annotations

import socket
import threading

from waitress import wasyncore
from waitress.server import create_server

LOOPBACK = "127.0.0.1"


class LoopbackServer:
    def __init__(
        self,
        app,
        port: int = 0,
        threads: int = 8,
        name: str = "server",
        host: str = LOOPBACK,
        channel_timeout_seconds: int = 10,
    ) -> None:
        # ``host`` is 127.0.0.1 except where a local container must reach it (see tests/integration/test_sam_local.py).
        # A connection silent for channel_timeout_seconds (a half-sent or malformed request) is closed.
        self._server = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident=name,
            channel_timeout=channel_timeout_seconds,
            cleanup_interval=1,
        )
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._server.effective_host}:{self._server.effective_port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._server.task_dispatcher.shutdown()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopping.is_set():
            wasyncore.loop(timeout=0.1, map=self._server._map, use_poll=True, count=1)
        for channel in list(self._server._map.values()):
            channel.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]
