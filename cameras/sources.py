"""What a camera's source URI may be, checked before anything tries to open it."""

from __future__ import annotations

import enum
import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

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


# The protocols FFmpeg may use for each networked kind, nested ones included (an HLS playlist's
# entries, an RTSP session's RTP). Without a list FFmpeg opens whatever a stream names: a
# playlist could list file:///etc/passwd, concat:, data: or subfile: entries and have the
# server read its own disk as "video".
RTSP_PROTOCOLS = "rtsp,rtsps,rtp,srtp,tcp,udp,tls"
HTTP_PROTOCOLS = "http,https,tcp,tls,crypto"


class RtspSource(SourceType):
    kind = SourceKind.RTSP
    networked = True

    def open(self, target: str, *, timeout: float) -> Any:
        import av  # deferred as in SourceType.open

        options = {"rtsp_transport": "tcp", "protocol_whitelist": RTSP_PROTOCOLS}
        return av.open(target, options=options, timeout=(timeout, timeout))


class HttpSource(SourceType):
    # FFmpeg probes MJPEG (multipart), HLS playlists and progressive files by itself.
    kind = SourceKind.HTTP
    networked = True
    paced = True

    def open(self, target: str, *, timeout: float) -> Any:
        import av  # deferred as in SourceType.open

        # FFmpeg follows redirects and fetches an HLS playlist's entries on its own, checking
        # none of them against the address policy: every hop is checked here first, and
        # FFmpeg opens the final address. A source whose own host is blocked was set up by an
        # operator (no one else can save it), who may reach internal addresses anyway.
        final = target
        if _blocked_address(redact_host(target)) is None:
            final = check_http_hops(target, timeout=timeout)
        options = {"protocol_whitelist": HTTP_PROTOCOLS}
        return av.open(final, options=options, timeout=(timeout, timeout))


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


MAX_REDIRECTS = 5
MAX_PLAYLIST_DEPTH = 2
_PEEK_BYTES = 64 * 1024
_PLAYLIST_MAX = 1024 * 1024
_URI_ATTRIBUTE = re.compile(r'URI="([^"]*)"')


def check_http_hops(uri: str, *, timeout: float, depth: int = 0) -> str:
    """Follow `uri`'s redirects one at a time and read an HLS playlist's entries, checking each
    address against CAMERA_SOURCE_BLOCKED_NETWORKS as the camera's own host is; the address
    FFmpeg should open, or SourceError naming the refused hop.

    What remains open: a server may answer FFmpeg differently from this check (a redirect or a
    playlist changed in between); the protocol list keeps FFmpeg to http(s) even then.
    """
    import urllib.error
    import urllib.request

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # every Location is checked before it is followed

    opener = urllib.request.build_opener(_NoRedirect)
    current = uri
    for _hop in range(MAX_REDIRECTS + 1):
        _check_hop(current)
        try:
            response = opener.open(current, timeout=timeout)
        except urllib.error.HTTPError as error:
            location = error.headers.get("Location") if error.code in _REDIRECTS else None
            error.close()
            if location is None:
                return current  # FFmpeg reports the HTTP error itself (401, 404, ...)
            current = urljoin(current, location)
            continue
        except (urllib.error.URLError, OSError, ValueError):
            return current  # unreachable: FFmpeg reports it as the reader would
        with response:
            # read1: what has arrived, not a full 64 KiB: a slow MJPEG stream never ends.
            try:
                head = response.read1(_PEEK_BYTES)
            except OSError:
                return current  # silent or cut: FFmpeg reports it as the reader would
            if head.lstrip().startswith(b"#EXTM3U"):
                # A playlist is finite: read it whole, so no entry goes unchecked.
                try:
                    head += response.read(_PLAYLIST_MAX + 1 - len(head))
                except OSError as exc:
                    raise SourceError("The HLS playlist could not be read to check it.") from exc
        if head.lstrip().startswith(b"#EXTM3U"):
            if len(head) > _PLAYLIST_MAX:
                raise SourceError("The HLS playlist is too long to check; refused.")
            _check_playlist(current, head.decode("utf-8", "replace"), timeout, depth)
        return current
    raise SourceError(f"More than {MAX_REDIRECTS} redirects from {redact_host(uri)}.")


_REDIRECTS = {301, 302, 303, 307, 308}


def _check_hop(uri: str) -> None:
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError as exc:
        raise SourceError("A redirect or playlist entry has a malformed address.") from exc
    if parts.scheme.lower() not in {"http", "https"}:
        raise SourceError(
            f"A redirect or playlist entry leaves HTTP ({parts.scheme or 'no scheme'}:); refused."
        )
    blocked = _blocked_address(host)
    if blocked is not None:
        raise SourceError(
            f"A redirect or playlist entry points at a blocked address ({blocked}); refused."
        )


def _check_playlist(base: str, text: str, timeout: float, depth: int) -> None:
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        entries = _URI_ATTRIBUTE.findall(line) if line.startswith("#") else [line]
        for entry in entries:
            target = urljoin(base, entry)
            _check_hop(target)
            if depth < MAX_PLAYLIST_DEPTH and urlsplit(target).path.endswith((".m3u8", ".m3u")):
                check_http_hops(target, timeout=timeout, depth=depth + 1)


def redact_host(uri: str) -> str:
    try:
        return urlsplit(uri).hostname or "?"
    except ValueError:
        return "?"
