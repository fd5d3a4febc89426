"""`bin/run`'s supervisor: a killed embedded Redis and a hung (SIGSTOPped) worker are noticed
and replaced without anyone's help."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from abusewatch.heartbeat import heartbeat_key
from tests.faults.conftest import fault_env, started, wait_until
from tests.support.live import Process, free_port

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.usefixtures("media_root"),
    pytest.mark.timeout(300),
]

STALE_AFTER = 4.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_supervisor_restarts_a_killed_redis_and_a_hung_worker(model_dir, var_dir, tmp_path):
    import redis

    env = fault_env(
        model_dir,
        ABUSEWATCH_VAR_DIR=str(var_dir),
        WORKER_HEARTBEAT_INTERVAL_SECONDS="1",
        WORKER_HEARTBEAT_STALE_SECONDS=str(STALE_AFTER),
    )
    env.pop("REDIS_URL")  # the supervisor starts and watches its own
    supervisor = Process(
        [sys.executable, "-m", "abusewatch.supervisor", "--port", str(free_port())],
        env=env,
        log=tmp_path / "supervisor.log",
    )
    try:
        socket_file = var_dir / "redis" / "redis.sock"
        client = redis.Redis(unix_socket_path=str(socket_file), socket_timeout=2)

        def beating(name: str) -> bool:
            try:
                # The children inherit this run's PIPELINE_REDIS_PREFIX (settings_test).
                keys = client.hkeys(heartbeat_key())
                return any(name in (k.decode() if isinstance(k, bytes) else k) for k in keys)
            except redis.RedisError:
                return False

        waited = wait_until(lambda: beating("inference@"), timeout=120)
        assert beating("inference@"), (
            f"no inference heartbeat after {waited:.0f} s\n{supervisor.output()}"
        )

        # 1. Redis dies.
        (redis_pid,) = started(supervisor.output(), "redis")
        os.kill(redis_pid, signal.SIGKILL)
        took = wait_until(lambda: len(started(supervisor.output(), "redis")) == 2, timeout=30)
        restarted = started(supervisor.output(), "redis")
        assert len(restarted) == 2 and client.ping(), (
            f"Redis not restarted {took:.0f} s after SIGKILL\n{supervisor.output()[-3000:]}"
        )
        back = wait_until(lambda: beating("inference@"), timeout=60)
        assert beating("inference@"), f"workers did not come back to the new Redis in {back:.0f} s"
        sys.stdout.write(
            f"FIGURE: Redis restarted {took:.1f} s after SIGKILL; workers back {back:.1f} s later\n"
        )

        # 2. The inference worker hangs.
        (inference_pid,) = started(supervisor.output(), "inference")
        os.kill(inference_pid, signal.SIGSTOP)
        hung_at = time.monotonic()
        replaced = wait_until(
            lambda: len(started(supervisor.output(), "inference")) == 2, timeout=60
        )
        assert len(started(supervisor.output(), "inference")) == 2, (
            f"hung worker not replaced {replaced:.0f} s after SIGSTOP\n"
            + supervisor.output()[-3000:]
        )
        assert f"inference (pid {inference_pid}) is hung" in supervisor.output()
        assert wait_until(lambda: not alive(inference_pid), timeout=10) < 10, "hung worker kept"
        bound = STALE_AFTER + 5.0 + 2.0 + 2.0  # stale + watch period + restart delay + slack
        took_hung = time.monotonic() - hung_at
        sys.stdout.write(
            f"FIGURE: hung worker replaced {took_hung:.1f} s after SIGSTOP (bound {bound:g} s)\n"
        )
        assert took_hung <= bound, (
            f"hung worker replaced after {took_hung:.1f} s (bound {bound:g} s)"
        )
    finally:
        supervisor.stop(signal.SIGINT, timeout=30)
