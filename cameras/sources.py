"""What a camera's source URI may be, checked before anything tries to open it."""

from __future__ import annotations

import enum
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext


class SourceError(ValueError):
    pass


class SourceKind(enum.StrEnum):
    RTSP = "rtsp"
    HTTP = "http"
    FILE = "file"
    DEVICE = "device"


class SourceType:
    """How one kind of source behaves; the reader and the probe both ask it, never its kind.

    networked:     on the network: the probe checks host and port first, and centre admins
                   may use it unless the address is blocked
    operator_only: reads this server's own disk or devices, so only an operator may use it
    paced:         may be read faster than real time, so it is replayed at its own rate
    loops:         a file: played again at once when it ends; a live source that ends has
                   disconnected, and is reconnected with backoff
    """

    kind: SourceKind
    networked = False
    operator_only = False
    paced = False
    loops = False

    def open(self, target: str, *, timeout: float) -> Any:
        """Open `target` (the URI, or one clip of a file source) as a PyAV container."""
        # PyAV (FFmpeg) is imported where a source is opened, not where a URI is validated
        # (the web process validates them on every camera form).
        import av

        return av.open(target, timeout=(timeout, timeout))


class RtspSource(SourceType):
    kind = SourceKind.RTSP
    networked = True

    def open(self, target: str, *, timeout: float) -> Any:
        import av  # deferred as in SourceType.open

        return av.open(target, options={"rtsp_transport": "tcp"}, timeout=(timeout, timeout))


class HttpSource(SourceType):
    # FFmpeg probes MJPEG (multipart), HLS playlists and progressive files by itself.
    kind = SourceKind.HTTP
    networked = True
    paced = True


class FileSource(SourceType):
    kind = SourceKind.FILE
    operator_only = True
    paced = True
    loops = True

    def open(self, target: str, *, timeout: float) -> Any:
        import av  # deferred as in SourceType.open

        return av.open(target)


class DeviceSource(SourceType):
    kind = SourceKind.DEVICE
    operator_only = True

    def open(self, target: str, *, timeout: float) -> Any:
        import av  # deferred as in SourceType.open

        return av.open(target, format="v4l2", timeout=(timeout, timeout))


SOURCE_TYPES: dict[SourceKind, SourceType] = {
    source_type.kind: source_type
    for source_type in (RtspSource(), HttpSource(), FileSource(), DeviceSource())
}


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    uri: str

    @property
    def type(self) -> SourceType:
        return SOURCE_TYPES[self.kind]

    @property
    def is_live(self) -> bool:
        return not self.type.loops


def parse_source_uri(uri: str) -> Source:
    uri = uri.strip()
    if not uri:
        raise SourceError("The source is empty.")
    if any(ord(char) < 32 for char in uri):
        raise SourceError("The source contains control characters.")
    try:
        parts = urlsplit(uri)
        # .hostname and .port parse the bracketed host lazily: "http://[::1" or "http://[zz]/"
        # raise here, not in urlsplit alone.
        parts.hostname  # noqa: B018
        parts.port  # noqa: B018
    except ValueError as exc:
        raise SourceError(
            "The address is malformed (check the host, its brackets and the port)."
        ) from exc
    scheme = parts.scheme.lower()
    if scheme in {"rtsp", "rtsps"}:
        if not parts.hostname:
            raise SourceError("An RTSP source needs a host, as in rtsp://camera.local:554/stream.")
        return Source(SourceKind.RTSP, uri)
    if scheme in {"http", "https"}:
        if not parts.hostname:
            raise SourceError("An HTTP source needs a host, as in http://camera.local/video.mjpg.")
        return Source(SourceKind.HTTP, uri)
    if scheme == "file":
        return Source(SourceKind.FILE, parts.path)
    if scheme:
        raise SourceError(
            f"Unsupported source type {scheme!r}: "
            "use rtsp://, http(s)://, a file path or /dev/video*."
        )
    if uri.startswith("/dev/video"):
        return Source(SourceKind.DEVICE, uri)
    if Path(uri).is_absolute():
        return Source(SourceKind.FILE, uri)
    raise SourceError("A file source must be an absolute path.")


def source_allowed_for(uri: str, *, is_operator: bool) -> str | None:
    """Why this user may not point a camera at `uri`, or None when they may.

    A file or device source reads the server's own disk: it could replay another centre's
    stored footage as one's own camera, or probe which paths exist. Only operators (and the
    system itself, e.g. the demo seed) may use one; centre admins use network cameras.
    """
    if not uri or is_operator:
        return None
    try:
        source = parse_source_uri(uri)
    except SourceError:
        return None  # the parser's own error is reported by the caller's validation
    if source.type.operator_only:
        return gettext("Only an operator can use a file or a local device as a camera source.")
    blocked = _blocked_address(urlsplit(source.uri).hostname or "")
    if blocked is not None:
        return gettext(
            "A camera source cannot point at this server or its internal addresses (%(address)s); "
            "an operator can set up such a camera."
        ) % {"address": blocked}
    return None


def _blocked_address(host: str) -> str | None:
    """The first address of `host` in CAMERA_SOURCE_BLOCKED_NETWORKS, if any.

    A network camera lives on the centre's network; a source on this server's loopback, a
    cloud metadata address (link-local) or a multicast group would let a centre admin reach
    services that are not cameras and, through the test button, map which ports are open.
    Names are resolved here as the reader would; a name that resolves later to another
    address (DNS rebinding) is not caught by this check.
    """
    from django.conf import settings

    networks = [
        ipaddress.ip_network(network, strict=False)
        for network in settings.CAMERA_SOURCE_BLOCKED_NETWORKS
    ]
    if not host or not networks:
        return None
    for address in _addresses_of(host):
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address.version == net.version and address in net for net in networks):
            return str(address)
    return None


def _addresses_of(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []  # unresolvable: the reader cannot reach it either, and says so
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    return addresses
