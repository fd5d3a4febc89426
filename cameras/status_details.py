"""The fixed health details a camera reader reports, stored in English, shown translated.

A reader thread has no request and so no reader's language: it stores these exact English
strings in `Camera.status_detail`, and the pages (and the live rows, through the
status-labels map) show them in the reader's language. Details carrying an error message
stay as the error gave them.
"""

from __future__ import annotations

from django.utils.translation import gettext, gettext_noop

RECEIVING_VIDEO = gettext_noop("Receiving video.")
INGESTION_STOPPED = gettext_noop("Ingestion stopped for this camera.")
# Followed by the reason (credentials redacted), as the reader saw it.
DETECT_STREAM_UNAVAILABLE = gettext_noop(
    "Receiving video; the detect stream is unavailable, so the main stream is analysed:"
)
FIXED_DETAILS = (RECEIVING_VIDEO, INGESTION_STOPPED)
# Fixed openings of details that go on with an error message: the opening is translated.
FIXED_OPENINGS = (DETECT_STREAM_UNAVAILABLE,)


def detail_display(detail: str) -> str:
    """`detail` in the active language when it is one of the fixed ones, else as stored."""
    if detail in FIXED_DETAILS:
        return gettext(detail)
    for opening in FIXED_OPENINGS:
        if detail.startswith(opening):
            return gettext(opening) + detail[len(opening) :]
    return detail
