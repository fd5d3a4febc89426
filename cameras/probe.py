"""Test a camera source before saving it, and say plainly why it fails.

The probe never holds a request for long: name lookup and TCP connect get a few seconds each,
and PyAV opens the stream in a worker thread that is abandoned at the deadline (its own
socket timeouts end it soon after).
"""

from __future__ import annotations

import enum
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from cameras.sources import Source, SourceError, SourceKind, parse_source_uri

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
FRAMES_TO_DECODE = 3


class ProbeFailure(enum.StrEnum):
    BAD_URI = "bad_uri"
    UNREACHABLE = "unreachable"
    AUTH_REFUSED = "auth_refused"
    NOT_VIDEO = "not_video"
    TIMEOUT = "timeout"
    NOT_FOUND = "not_found"
    FAILED = "failed"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str
    failure: ProbeFailure | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _fail(kind: ProbeFailure, message: str, started: float) -> ProbeResult:
    return ProbeResult(False, message, kind, seconds=round(time.monotonic() - started, 2))


def _check_network(uri: str, deadline: float, started: float) -> ProbeResult | None:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    except ValueError:
        return _fail(ProbeFailure.BAD_URI, _("The port in the address is not a number."), started)
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return _fail(
            ProbeFailure.UNREACHABLE,
            _("Host unreachable: the name %(host)s cannot be found.") % {"host": host},
            started,
        )
    family, kind, proto, _name, address = addresses[0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(max(0.5, min(4.0, deadline - time.monotonic())))
            sock.connect(address)
    except TimeoutError:
        return _fail(
            ProbeFailure.TIMEOUT,
            _("Timed out: %(host)s:%(port)s did not answer.") % {"host": host, "port": port},
            started,
        )
    except OSError as exc:
        return _fail(
            ProbeFailure.UNREACHABLE,
            _("Host unreachable: %(host)s:%(port)s refused or dropped the connection (%(error)s).")
            % {"host": host, "port": port, "error": exc.strerror or exc},
            started,
        )
    return None


def _open_with_pyav(source: Source, timeout: float) -> dict[str, Any]:
    # Opened as the reader opens it: the source's own type says how.
    with source.type.open(source.uri, timeout=timeout) as container:
        if not container.streams.video:
            raise _NoVideo
        stream = container.streams.video[0]
        frames = 0
        for _frame in container.decode(stream):
            frames += 1
            if frames >= FRAMES_TO_DECODE:
                break
        if frames == 0:
            raise _NoVideo
        rate = stream.average_rate or stream.guessed_rate
        return {
            "codec": stream.codec_context.name,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "fps": round(float(rate), 2) if rate else None,
            "frames_decoded": frames,
        }


class _NoVideo(Exception):
    pass


def _classify(exc: BaseException, started: float, kind: SourceKind) -> ProbeResult:
    import errno

    import av

    if isinstance(exc, SourceError):
        # A redirect or a playlist entry refused by the address policy (cameras.sources).
        return _fail(ProbeFailure.BAD_URI, str(exc), started)
    if isinstance(exc, _NoVideo):
        return _fail(
            ProbeFailure.NOT_VIDEO, _("Not a video: the source has no video frames."), started
        )
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return _fail(
            ProbeFailure.AUTH_REFUSED,
            _("Authentication refused: check the user name and password in the address."),
            started,
        )
    if isinstance(exc, av.error.HTTPNotFoundError | FileNotFoundError):
        return _fail(
            ProbeFailure.NOT_FOUND, _("Not found: the server has no such stream or file."), started
        )
    if isinstance(exc, av.error.InvalidDataError):
        return _fail(
            ProbeFailure.NOT_VIDEO,
            _("Not a video: the source answered, but not with a video stream."),
            started,
        )
    if kind == SourceKind.HTTP and getattr(exc, "errno", None) == errno.EIO:
        # The host answered over HTTP (checked before), but FFmpeg could not read a stream
        # from the reply: typically a web page or an image instead of video.
        return _fail(
            ProbeFailure.NOT_VIDEO,
            _("Not a video: the web server answered, but not with a video stream."),
            started,
        )
    if isinstance(exc, TimeoutError) or "timed out" in str(exc).lower():
        return _fail(
            ProbeFailure.TIMEOUT, _("Timed out: the source sent no video in time."), started
        )
    if isinstance(exc, av.error.HTTPClientError | av.error.HTTPServerError):
        return _fail(
            ProbeFailure.FAILED,
            _("The server refused the request: %(error)s") % {"error": exc},
            started,
        )
    if isinstance(exc, ConnectionError):
        return _fail(
            ProbeFailure.UNREACHABLE, _("Host unreachable: %(error)s") % {"error": exc}, started
        )
    return _fail(
        ProbeFailure.FAILED,
        _("The source could not be opened: %(error)s") % {"error": exc},
        started,
    )


def probe_source(uri: str, *, timeout: float | None = None) -> ProbeResult:
    """Open `uri` as the ingestion would and decode a few frames."""
    started = time.monotonic()
    limit = settings.CAMERA_PROBE_TIMEOUT_SECONDS if timeout is None else timeout
    deadline = started + limit
    try:
        source = parse_source_uri(uri)
    except SourceError as exc:
        return _fail(ProbeFailure.BAD_URI, _("Bad address: %(error)s") % {"error": exc}, started)
    outcome: dict[str, Any] = {}

    def run() -> None:
        # Name lookup has no timeout of its own, so it runs here too, under the deadline.
        try:
            if source.type.networked:
                failure = _check_network(source.uri, deadline, started)
                if failure is not None:
                    outcome["result"] = failure
                    return
            elif not Path(source.uri).exists():
                outcome["result"] = _fail(
                    ProbeFailure.NOT_FOUND,
                    _("Not found: %(path)s does not exist on the server.") % {"path": source.uri},
                    started,
                )
                return
            outcome["details"] = _open_with_pyav(source, max(1.0, min(5.0, limit)))
        except BaseException as exc:  # handed to the request thread, which classifies it
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="camera-probe", daemon=True)
    worker.start()
    worker.join(max(0.1, deadline - time.monotonic()))
    if worker.is_alive():
        return _fail(
            ProbeFailure.TIMEOUT,
            _("Timed out: no video arrived within %(seconds)s seconds.")
            % {"seconds": round(limit)},
            started,
        )
    if "result" in outcome:
        result: ProbeResult = outcome["result"]
        return result
    if "error" in outcome:
        return _classify(outcome["error"], started, source.kind)
    details = outcome.get("details", {})
    return ProbeResult(
        True,
        _("Connected: %(codec)s %(width)sx%(height)s video.") % details,
        None,
        details,
        round(time.monotonic() - started, 2),
    )
