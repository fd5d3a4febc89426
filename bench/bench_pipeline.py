"""Live pipeline benchmark: N cameras replaying real clips at real time, for M minutes.

    python -m bench.bench_pipeline --cameras 32 --minutes 1

Starts its own embedded Redis (unless REDIS_URL is set), a fresh SQLite database in a temp
folder (or DATABASE_URL), `manage.py run_ingest` and one Celery inference worker, exactly as
`bin/run` does. Every camera replays a 640x360 25-fps H.264 clip made from the fixture clips;
thresholds are forced so every window is non-safe (the figures do not depend on the model).

Reports, over the measured minutes (after a warm-up):
- windows expected (stream time / window), stored, scored, and lost (never stored or scored)
- CPU seconds per second of the ingest and inference processes, and per camera
- alert latency: window end (its wall-clock time) -> the `detection.scored` / `case.alert`
  message arriving through the Redis channel layer, where a websocket consumer picks it up
- inference batch sizes and preprocess / model times
Sustained means: no lost windows and scored windows keep up with the stream (no backlog).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def process_cpu(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += sum(child.cpu_times()[:2])
        return total
    except psutil.NoSuchProcess:
        return 0.0


class Listener:
    """Subscribes to the operators' group on the channel layer, as the websocket consumer does."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._run(), self.loop)
        self.ready.wait(10)

    async def _run(self) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add("operators", channel)
        self.ready.set()
        while True:
            event = await layer.receive(channel)
            self.messages.append((time.time(), event["message"]))


def prepare_footage(folder: Path, count: int) -> list[Path]:
    from bench.clips import encode_clip, fixture_clips

    clips = fixture_clips()
    made = []
    for index in range(min(count, len(clips))):
        rotated = clips[index:] + clips[:index]
        made.append(encode_clip(rotated, folder / f"stream-{index}.mp4"))
    return made


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=25.0, help="seconds before measuring")
    parser.add_argument("--shards", type=int, default=1, help="ingest processes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="abusewatch-bench-"))
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="abusewatch.settings",
        DEBUG="1",
        ABUSEWATCH_VAR_DIR=str(work / "var"),
        MEDIA_ROOT=str(work / "media"),
        LOG_LEVEL="WARNING",
        TF_CPP_MIN_LOG_LEVEL="2",
        CHANNELS_PREFIX=f"bench{os.getpid()}",
        PIPELINE_REDIS_PREFIX=f"bench{os.getpid()}",
        INGEST_POLL_SECONDS="2",
    )
    if not env.get("REDIS_URL"):
        from abusewatch.embedded import start_embedded_redis

        env["REDIS_URL"] = start_embedded_redis(work / "redis")
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cameras.models import Camera, PoliceStation, Site
    from detection.model_versions import model_version_register
    from detection.models import Detection, Segment

    model_dir = Path(settings.DEFAULT_MODEL_DIR)
    if not (model_dir / "model.keras").is_file():
        from tests.support.live import _build_tiny_model

        model_dir = _build_tiny_model(work / "tiny-model")
        print(
            f"bench: no shipped model at {settings.DEFAULT_MODEL_DIR}; using a tiny untrained one"
        )
    env["DEFAULT_MODEL_DIR"] = str(model_dir)
    os.environ["DEFAULT_MODEL_DIR"] = str(model_dir)
    version = model_version_register(artifact_dir=model_dir, activate=True)
    print(f"bench: model {version.name}; preparing 640x360 25-fps footage in {work}")
    footage = prepare_footage(work / "footage", args.cameras)
    station = PoliceStation.objects.create(name="Bench", region="Bench", phone="0", address="-")
    site = Site.objects.create(
        name="Bench", address="-", phone="0", director="-", region="Bench", police_station=station
    )
    for index in range(args.cameras):
        Camera.objects.create(
            site=site,
            name=f"cam-{index:02d}",
            source_uri=str(footage[index % len(footage)]),
            low_threshold=0.0,
            high_threshold=0.0001,
        )
    window = Camera.objects.first().window_seconds  # type: ignore[union-attr]

    listener = Listener()
    logs = work / "logs"
    logs.mkdir()
    python = sys.executable
    children = {
        "inference": subprocess.Popen(
            [
                python,
                "-m",
                "celery",
                "-A",
                "abusewatch",
                "worker",
                "-Q",
                "inference",
                "-P",
                "solo",
                "-n",
                f"bench{os.getpid()}@%h",
                "-l",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO,
            env=env,
            stdout=(logs / "inference.log").open("wb"),
            stderr=subprocess.STDOUT,
        ),
    }
    for shard in range(args.shards):
        children[f"ingest-{shard}"] = subprocess.Popen(
            [python, "manage.py", "run_ingest", "--shard", f"{shard}/{args.shards}"],
            cwd=REPO,
            env=env,
            stdout=(logs / f"ingest-{shard}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(args.warmup)
        start_wall = time.time()
        cpu_start = {name: process_cpu(child.pid) for name, child in children.items()}
        load_start = os.getloadavg()[0]
        time.sleep(args.minutes * 60)
        end_wall = time.time()
        cpu_end = {name: process_cpu(child.pid) for name, child in children.items()}
        load_end = os.getloadavg()[0]
        children_ingest = [c for n, c in children.items() if n.startswith("ingest")]
        for child in children_ingest:
            child.terminate()
        # Windows that closed inside the measured span get a grace period to be scored.
        time.sleep(max(5.0, window * 2))
    finally:
        for child in children.values():
            child.terminate()
        for child in children.values():
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()

    span = end_wall - start_wall
    begin = dt.datetime.fromtimestamp(start_wall, tz=dt.UTC)
    finish = dt.datetime.fromtimestamp(end_wall, tz=dt.UTC)
    measured = Segment.objects.filter(ended_at__gt=begin, ended_at__lte=finish)
    stored = measured.count()
    scored = Detection.objects.filter(segment__in=measured).count()
    skipped = measured.filter(status=Segment.Status.SKIPPED).count()
    expected = 0
    lost_gaps = 0
    for camera in Camera.objects.all():
        starts = list(
            measured.filter(camera=camera)
            .order_by("started_at")
            .values_list("started_at", "ended_at")
        )
        expected += int(span // window)
        for (_s1, e1), (s2, _e2) in itertools.pairwise(starts):
            gap = (s2 - e1).total_seconds()
            if gap > window * 0.5:
                lost_gaps += round(gap / window)
    unscored = stored - scored - skipped
    scored_latency = []
    alert_latency = []
    ends = dict(measured.values_list("pk", "ended_at"))
    for received, message in listener.messages:
        if message.get("type") == "detection.scored":
            segment_end = ends.get(message["detection"]["segment"])
            if segment_end is not None:
                scored_latency.append(received - segment_end.timestamp())
        elif message.get("type") == "case.alert":
            ended = dt.datetime.fromisoformat(message["case"]["started_at"]) + dt.timedelta(
                seconds=window
            )
            if begin <= ended <= finish:
                alert_latency.append(received - ended.timestamp())
    detections = Detection.objects.filter(segment__in=measured)
    batches = list(detections.values_list("batch_size", flat=True))
    inference_ms = list(detections.values_list("inference_ms", flat=True))
    preprocess_ms = list(detections.values_list("preprocess_ms", flat=True))
    # The cascade's stage 2 (pose): on the windows the gate passed, its time each.
    stage2_ms = [ms for ms in detections.values_list("stage2_ms", flat=True) if ms is not None]
    cpu = {name: (cpu_end[name] - cpu_start[name]) / span for name in children}
    total_cpu = sum(cpu.values())
    store_lag = [
        (created - ended).total_seconds()
        for created, ended in measured.values_list("created_at", "ended_at")
    ]
    figures = {
        "cameras": args.cameras,
        "measured_seconds": round(span, 1),
        "windows_expected": expected,
        "windows_stored": stored,
        "windows_scored": scored,
        "windows_skipped_by_motion_gate": skipped,
        "windows_lost": max(0, expected - stored) + unscored,
        "gaps_in_timelines_windows": lost_gaps,
        "unscored_after_grace": unscored,
        "cpu_cores_used": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_cores_total": round(total_cpu, 3),
        "cpu_per_camera_percent_of_a_core": round(100 * total_cpu / args.cameras, 2),
        "store_lag_p50_s": round(percentile(store_lag, 50), 3),
        "store_lag_p95_s": round(percentile(store_lag, 95), 3),
        "scored_latency_p50_s": round(percentile(scored_latency, 50), 3),
        "scored_latency_p95_s": round(percentile(scored_latency, 95), 3),
        "scored_latency_max_s": round(max(scored_latency, default=float("nan")), 3),
        "case_alert_latency_p50_s": round(percentile(alert_latency, 50), 3),
        "case_alerts": len(alert_latency),
        "batch_size_mean": round(statistics.mean(batches), 2) if batches else None,
        "batch_size_max": max(batches, default=None),
        "inference_ms_per_batch_p50": round(percentile(inference_ms, 50), 1),
        "preprocess_ms_per_window_p50": round(percentile(preprocess_ms, 50), 2),
        "stage2_windows": len(stage2_ms),
        "stage2_pass_rate": round(len(stage2_ms) / len(batches), 3) if batches else None,
        "stage2_ms_per_window_p50": round(percentile(stage2_ms, 50), 1),
        "load_average_1m": [round(load_start, 2), round(load_end, 2)],
        "work_folder": str(work),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
