"""Real parts for the pipeline tests: a model, a Celery worker process, footage, an RTSP server.

- The model is the shipped default when it exists, else a tiny untrained one built with ml/;
  tests never depend on its scores: they force bands with camera thresholds.
- The Celery worker is `celery -A abusewatch worker` in a subprocess, pointed at this test
  run's database, Redis and media folder, so tests need `django_db(transaction=True)`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from bench.clips import encode_clip, fixture_clips

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    # Other engineers run their suites against the same PostgreSQL server at the same time:
    # a test database of our own keeps their runs and ours from dropping each other's.
    default = settings.DATABASES["default"]
    if default["ENGINE"] != "django.db.backends.sqlite3":
        default.setdefault("TEST", {})["NAME"] = f"test_{default['NAME']}_pipeline"


def _build_tiny_model(folder: Path) -> Path:
    from ml.model import ModelConfig, build_model
    from ml.preprocess import InputSpec

    spec = InputSpec()
    model = build_model(spec, ModelConfig(widths=(8, 8), lstm_units=4))
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    card = {
        "version": "tiny-untrained-test-model",
        "input_spec": spec.to_dict(),
        "thresholds": {"low": 0.3, "high": 0.8, "method": "fixed for tests"},
    }
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shipped = Path(settings.DEFAULT_MODEL_DIR)
    if (shipped / "model.keras").is_file() and (shipped / "model_card.json").is_file():
        return shipped
    return _build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def active_model(model_dir: Path, db: None, settings: Any) -> Any:
    from detection.model_versions import model_version_register

    settings.DEFAULT_MODEL_DIR = model_dir
    return model_version_register(artifact_dir=model_dir, activate=True)


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All fixture clips twice, re-encoded as one 32-s 640x360 25-fps camera-like stream."""
    return encode_clip(fixture_clips(), tmp_path_factory.mktemp("footage") / "long.mp4", repeat=2)


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 2-s camera-like clips, as the demo camera replays."""
    folder = tmp_path_factory.mktemp("clips")
    for source in fixture_clips()[:3]:
        encode_clip([source], folder / source.name)
    return folder


def database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def child_env(model_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a process that must see this test run's database, Redis and files."""
    env = dict(os.environ)
    # Test workers start cold on a shared CPU: the model loads while the first windows wait,
    # which the capacity budgets (detection.backpressure) rightly read as falling behind, and
    # a window would then be scored without stage 2. Tests of backpressure pass their own.
    env.setdefault("INFERENCE_MAX_LAG_SECONDS", "600")
    env.setdefault("INFERENCE_DEFERRED_MAX_AGE_SECONDS", "3600")
    env.setdefault("INFERENCE_STAGE2_MAX_LAG_SECONDS", "600")
    env.update(
        DJANGO_SETTINGS_MODULE="abusewatch.settings",
        DEBUG="1",
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        DEFAULT_MODEL_DIR=str(model_dir),
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class Process:
    """A child process in its own process group, with its output kept in a file."""

    def __init__(self, args: list[str], *, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.args, self.env = args, env
        self.handle = log.open("wb")
        self.restarts = 0
        self.popen = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.args,
            cwd=REPO,
            env=self.env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def restart_if_exited(self) -> bool:
        """Start the process again if it has exited, as abusewatch.supervisor does for every
        process it runs (its output goes on in the same log). Returns whether it restarted."""
        if self.popen.poll() is None:
            return False
        self.handle.write(f"\n--- exited with {self.popen.returncode}; restarted\n".encode())
        self.handle.flush()
        self.restarts += 1
        self.popen = self._spawn()
        return True

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self.handle.close()


@pytest.fixture
def celery_worker(model_dir: Path, transactional_db: None, tmp_path: Path) -> Iterator[Process]:
    worker = Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "abusewatch",
            "worker",
            "-Q",
            "inference,default",
            "-P",
            "solo",
            "-n",
            f"pipeline-test-{os.getpid()}@%h",
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env=child_env(model_dir),
        log=tmp_path / "celery.log",
    )
    yield worker
    worker.stop()
    sys.stdout.write(worker.output()[-3000:])  # shown by pytest when the test fails


@pytest.fixture
def purge_queues() -> Iterator[None]:
    """Start with no messages or pending ids left over by an earlier test."""
    from abusewatch.celery import app
    from detection import inference

    app.control.purge()
    client = inference.redis_client()
    client.delete(inference.pending_key())
    # `purge()` empties only the queues this process declared (`default`); the others are
    # lists in the broker's Redis, kombu's priority levels beside them. A message left there
    # by an earlier test reads as a backlog (the reconciler then never gives a window up).
    for queue in ("default", "inference", "media", "pose"):
        client.delete(queue, *[f"{queue}\x06\x16{level}" for level in range(10)])
    yield


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


RTSP_SERVER = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
clip, port = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( filesrc location={clip} ! qtdemux ! h264parse config-interval=1 "
    "! rtph264pay name=pay0 pt=96 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
server.attach(None)
print("ready", flush=True)
GLib.MainLoop().run()
"""


@pytest.fixture
def fast_reconnect(settings: Any) -> None:
    """Camera readers that notice a cut and retry within seconds, not minutes."""
    settings.INGEST_BACKOFF_INITIAL_SECONDS = 0.5
    settings.INGEST_BACKOFF_MAX_SECONDS = 2.0
    settings.INGEST_READ_TIMEOUT_SECONDS = 3.0
    settings.INGEST_STATUS_SECONDS = 1.0


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RtspServer:
    def __init__(self, clip: Path, folder: Path) -> None:
        self.clip, self.folder = clip, folder
        self.port = free_port()
        self.script = folder / "rtsp_server.py"
        self.script.write_text(RTSP_SERVER, encoding="utf-8")
        self.process: Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        import socket

        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.process = Process(
            [SYSTEM_PYTHON, str(self.script), str(self.clip), str(self.port)],
            env=env,
            log=self.folder / f"rtsp-{self.starts}.log",
        )

        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, timeout=10, what="the RTSP server to listen", interval=0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGKILL)
            self.process = None


@pytest.fixture
def rtsp_server(long_clip: Path, tmp_path: Path) -> Iterator[RtspServer]:
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.fail("Debian's GStreamer RTSP server is missing: run bin/setup (apt-packages.txt)")
    server = RtspServer(long_clip, tmp_path)
    server.start()
    yield server
    server.stop()


_shared_loop: Any = None


def _event_loop() -> Any:
    """One event loop thread for every listener: a process's Redis channel layer receives on
    one loop only, as in a real ASGI server."""
    import asyncio
    import threading

    global _shared_loop
    if _shared_loop is None:
        _shared_loop = asyncio.new_event_loop()
        threading.Thread(target=_shared_loop.run_forever, daemon=True).start()
    return _shared_loop


class AlertListener:
    """A browser's websocket to /ws/alerts/ through the real ASGI application (session cookie,
    origin check, auth middleware) over the real Redis channel layer, so tests stay synchronous.
    """

    def __init__(self, user: Any | None) -> None:
        import asyncio
        import queue

        from django.test import Client

        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.failure: BaseException | None = None
        headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
        if user is not None:
            client = Client()
            client.force_login(user)
            name = settings.SESSION_COOKIE_NAME
            cookie = f"{name}={client.cookies[name].value}"
            headers.append((b"cookie", cookie.encode()))
        self._headers = headers
        self._loop = _event_loop()
        self.connected, self.close_code = self._run(self._connect())
        if self.connected:
            self._pump = asyncio.run_coroutine_threadsafe(self._receive_forever(), self._loop)

    def _run(self, coroutine: Any, timeout: float = 30) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _connect(self) -> tuple[bool, int | None]:
        from channels.testing import WebsocketCommunicator

        from abusewatch.asgi import application

        self.communicator = WebsocketCommunicator(application, "/ws/alerts/", headers=self._headers)
        connected, code = await self.communicator.connect(timeout=20)
        return connected, code

    async def _receive_forever(self) -> None:
        import asyncio

        while True:
            try:
                message = await self.communicator.receive_json_from(timeout=3600)
            except (TimeoutError, asyncio.CancelledError):
                return
            except BaseException as error:
                # A consumer that crashed must fail the test with its reason, not look silent.
                self.failure = error
                return
            self.messages.put(message)

    def wait(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float
    ) -> dict[str, Any]:
        import queue

        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no matching message in {timeout:.0f} s; got {seen[-5:]}; "
                    f"receiver failure: {self.failure!r}"
                )
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            seen.append(message)
            if predicate(message):
                return message

    def drain(self) -> list[dict[str, Any]]:
        items = []
        while not self.messages.empty():
            items.append(self.messages.get_nowait())
        return items

    def close(self) -> None:
        if self.connected:
            self._pump.cancel()
            with contextlib.suppress(Exception):
                self._run(self.communicator.disconnect(), timeout=10)


@pytest.fixture
def listen() -> Iterator[Callable[[Any], AlertListener]]:
    listeners: list[AlertListener] = []

    def open_for(user: Any) -> AlertListener:
        listener = AlertListener(user)
        listeners.append(listener)
        return listener

    yield open_for
    for listener in listeners:
        listener.close()
    if listeners:
        _close_connections_of_the_sync_thread()


def _close_connections_of_the_sync_thread() -> None:
    """The consumers' database calls ran in asgiref's sync thread, whose connection outlives the
    test and kept PostgreSQL from dropping the test database at the end of the run."""
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    future = asyncio.run_coroutine_threadsafe(
        sync_to_async(connections.close_all, thread_sensitive=True)(), _event_loop()
    )
    future.result(timeout=10)
