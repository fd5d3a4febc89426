"""Each kind of camera source is one small class in one registry, asked by reader and probe."""

from __future__ import annotations

import pytest

from cameras.sources import SOURCE_TYPES, SourceError, SourceKind, parse_source_uri


def test_every_kind_has_one_type():
    assert set(SOURCE_TYPES) == set(SourceKind)
    assert all(source_type.kind == kind for kind, source_type in SOURCE_TYPES.items())


@pytest.mark.parametrize(
    ("uri", "networked", "operator_only", "paced", "loops"),
    [
        ("rtsp://cam.local/stream", True, False, False, False),
        ("https://cam.local/video.mjpg", True, False, True, False),
        ("/srv/clips/demo.mp4", False, True, True, True),
        ("/dev/video0", False, True, False, False),
    ],
)
def test_what_each_kind_means(uri, networked, operator_only, paced, loops):
    source_type = parse_source_uri(uri).type
    assert (
        source_type.networked,
        source_type.operator_only,
        source_type.paced,
        source_type.loops,
    ) == (networked, operator_only, paced, loops)
    assert parse_source_uri(uri).is_live == (not loops)


@pytest.mark.parametrize("uri", ["", "ftp://x/y", "relative/path.mp4", "rtsp://", "http://"])
def test_bad_uris_are_refused_before_any_type_is_chosen(uri):
    with pytest.raises(SourceError):
        parse_source_uri(uri)
