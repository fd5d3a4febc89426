"""The embedded Redis of the single-machine setup goes away with the process that started it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from pathlib import Path
import redis
from abusewatch.embedded import redis_py_url, start_embedded_redis
url = start_embedded_redis(Path(sys.argv[1]))
# A second client still connected at exit, as workers and the channel layer are.
other = redis.Redis.from_url(redis_py_url(url))
other.ping()
print(url.removeprefix("redis+socket://"))
"""


def test_server_stops_when_its_process_exits_even_with_clients_connected(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "abusewatch.settings", "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    socket_path = result.stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        running = subprocess.run(["pgrep", "-f", socket_path], capture_output=True, text=True)
        if running.returncode != 0:
            break
        time.sleep(0.2)
    assert running.returncode != 0, f"redis-server on {socket_path} is still running"
