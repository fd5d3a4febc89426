"""The rules of a camera's settings, written once: the model, the form and the API serializer
all show back these same messages."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


def camera_setting_errors(
    *,
    low: float | None,
    high: float | None,
    window: float | None,
    overlap: float | None,
    source: str | None = None,
    analysis: str | None = None,
) -> dict[str, Promise]:
    """Field name -> message for each broken rule; empty when the settings hold together."""
    errors: dict[str, Promise] = {}
    if analysis and not source:
        # Footage comes from the main source only: a detect stream alone would be analysed
        # with nothing recorded to show for it.
        errors["analysis_uri"] = _(
            "A detect stream needs a main source: footage is recorded from the main source only."
        )
    if low is not None and high is not None and low >= high:
        errors["low_threshold"] = _("The low threshold must be below the high threshold.")
    if window is not None and overlap is not None and overlap >= window:
        errors["window_overlap_seconds"] = _("The overlap must be shorter than the window.")
    return errors


# What a centre admin may choose on their own. Outside these bounds a camera costs the server
# many times its share (a 0.5 s window overlapping 0.4999 s is ~20x the windows) or stops
# reporting altogether (a high threshold of 1.0 is never reached): an operator may set them,
# and the change is audited as beyond the bounds.
WINDOW_SECONDS_MIN = 1.0
WINDOW_SECONDS_MAX = 10.0
HIGH_THRESHOLD_MAX = 0.99


def camera_bound_errors(
    *, window: float | None, overlap: float | None, high: float | None
) -> dict[str, Promise]:
    """Field name -> message for each setting only an operator may choose."""
    errors: dict[str, Promise] = {}
    if window is not None and not WINDOW_SECONDS_MIN <= window <= WINDOW_SECONDS_MAX:
        errors["window_seconds"] = _(
            "The window must be 1 to 10 seconds; only an operator can set it otherwise."
        )
    if window is not None and overlap is not None and overlap >= window / 2:
        errors["window_overlap_seconds"] = _(
            "The overlap must be under half the window; only an operator can set it higher."
        )
    if high is not None and high > HIGH_THRESHOLD_MAX:
        errors["high_threshold"] = _(
            "A high threshold above 0.99 would stop police reports from this camera; "
            "only an operator can set it."
        )
    return errors


# Which changed fields bring each bound into question: a camera an operator set beyond the
# bounds can still be renamed by its centre admin.
BOUND_FIELDS = {
    "window_seconds": {"window_seconds"},
    "window_overlap_seconds": {"window_seconds", "window_overlap_seconds"},
    "high_threshold": {"high_threshold"},
}
