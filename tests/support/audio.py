"""A clip with a sound track, and a digest of a file's video bitstream alone."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av

CLIP_WITH_AUDIO = Path(__file__).resolve().parents[1] / "fixtures" / "audio" / "with-audio.mp4"


def video_packet_digest(path: Path) -> str:
    """SHA-256 over the video packets' bytes: equal digests mean the bitstream is unaltered."""
    digest = hashlib.sha256()
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.size:
                digest.update(bytes(packet))
    return digest.hexdigest()
