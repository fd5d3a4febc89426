"""`bin/run`'s supervisor: a killed embedded Redis and a hung (SIGSTOPped) worker are noticed
and replaced without anyone's help; with INGEST_SHARDS=2 and a pose queue, the real processes,
their shards, their priorities, and a hung shard replaced like a hung worker."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from abusewatch.supervisor import POSE_NICENESS
from tests.faults.conftest import (
    beating,
    started,
    supervisor_redis,
    supervisor_start,
    wait_until,
)

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
    supervisor = supervisor_start(
        model_dir,
        var_dir,
        tmp_path / "supervisor.log",
        WORKER_HEARTBEAT_INTERVAL_SECONDS="1",
        WORKER_HEARTBEAT_STALE_SECONDS=str(STALE_AFTER),
    )
    try:
        client = supervisor_redis(var_dir)
        waited = wait_until(lambda: beating(client, "inference@"), timeout=120)
        assert beating(client, "inference@"), (
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
        back = wait_until(lambda: beating(client, "inference@"), timeout=60)
        assert beating(client, "inference@"), (
            f"workers did not come back to the new Redis in {back:.0f} s"
        )
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


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_two_ingest_shards_run_beat_and_a_hung_one_is_replaced(model_dir, var_dir, tmp_path):
    supervisor = supervisor_start(
        model_dir,
        var_dir,
        tmp_path / "supervisor.log",
        INGEST_SHARDS="2",
        INFERENCE_POSE_QUEUE="pose",
        WORKER_HEARTBEAT_INTERVAL_SECONDS="1",
        WORKER_HEARTBEAT_STALE_SECONDS=str(STALE_AFTER),
    )
    try:
        client = supervisor_redis(var_dir)
        waited = wait_until(
            lambda: beating(client, "ingest-0@") and beating(client, "ingest-1@"), timeout=120
        )
        assert beating(client, "ingest-0@") and beating(client, "ingest-1@"), (
            f"no beat of both shards after {waited:.0f} s\n{supervisor.output()[-3000:]}"
        )
        log = supervisor.output()
        assert "supervisor: 2 ingest shard(s)" in log
        assert not started(log, "ingest-2")
        own = os.getpriority(os.PRIO_PROCESS, 0)
        for index in range(2):
            (pid,) = started(log, f"ingest-{index}")
            assert command_line(pid)[-2:] == ["--shard", f"{index}/2"]
            assert os.getpriority(os.PRIO_PROCESS, pid) == own
        (pose_pid,) = started(log, "pose")
        assert "pose" in command_line(pose_pid)
        assert os.getpriority(os.PRIO_PROCESS, pose_pid) == min(19, own + POSE_NICENESS)
        (inference_pid,) = started(log, "inference")
        assert os.getpriority(os.PRIO_PROCESS, inference_pid) == own

        # A shard that stops answering (its whole process frozen) is killed and replaced.
        (hung_pid,) = started(log, "ingest-1")
        os.kill(hung_pid, signal.SIGSTOP)
        took = wait_until(lambda: len(started(supervisor.output(), "ingest-1")) == 2, timeout=60)
        assert len(started(supervisor.output(), "ingest-1")) == 2, (
            f"hung shard not replaced {took:.0f} s after SIGSTOP\n{supervisor.output()[-3000:]}"
        )
        assert f"ingest-1 (pid {hung_pid}) is hung" in supervisor.output()
        new_pid = started(supervisor.output(), "ingest-1")[1]
        assert command_line(new_pid)[-2:] == ["--shard", "1/2"]
        sys.stdout.write(f"FIGURE: hung ingest shard replaced {took:.1f} s after SIGSTOP\n")
        # The other shard was left alone.
        assert len(started(supervisor.output(), "ingest-0")) == 1
    finally:
        supervisor.stop(signal.SIGINT, timeout=30)
