"""The law each centre's CCTV answers to, one entry per jurisdiction (Korea first).

Every rule that the law fixes is a setting of its jurisdiction, never a constant in the code
that applies it: the minimum retention, the reply deadline of a parents' viewing request, and
the references shown to users where a rule bites. A site names its jurisdiction by code.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Jurisdiction:
    code: str
    name: Promise
    # Recordings are kept at least this long; a site may keep them longer, never shorter.
    min_retention_days: int
    retention_reference: str
    # A parent's viewing request is answered (place and time) within this many days.
    viewing_reply_days: int
    # ... and the viewing itself should take place within about this many days of the answer.
    viewing_within_days: int
    viewing_reference: str
    # Copies taken outside the centre show no other child or staff member.
    copy_reference: str
    no_audio_reference: str
    access_log_reference: str
    # The duty to report (and, in its third paragraph, the reporter's confidentiality).
    report_reference: str

    @property
    def min_retention_hours(self) -> int:
        return self.min_retention_days * 24


KOREA = Jurisdiction(
    code="KR",
    name=_("Republic of Korea"),
    min_retention_days=60,
    retention_reference="영유아보육법 제15조의4 제3항",
    viewing_reply_days=10,
    viewing_within_days=7,
    viewing_reference="영유아보육법 제15조의5 제1항 제1호 및 같은 법 시행규칙",
    copy_reference="영유아보육법 제15조의5; 개인정보 보호법 제25조",
    no_audio_reference="개인정보 보호법 제25조 제5항",
    access_log_reference="영유아보육법 제15조의5 및 같은 법 시행규칙",
    report_reference="아동학대범죄의 처벌 등에 관한 특례법 제10조",
)

JURISDICTIONS: dict[str, Jurisdiction] = {KOREA.code: KOREA}
DEFAULT_JURISDICTION = KOREA.code


def jurisdiction_choices() -> list[tuple[str, Promise]]:
    return [(j.code, j.name) for j in JURISDICTIONS.values()]


def jurisdiction_of(code: str) -> Jurisdiction:
    """The registry entry for `code`; an unknown code falls back to the default law, so a
    typo can never make retention shorter than the strictest rule we know."""
    return JURISDICTIONS.get(code, JURISDICTIONS[DEFAULT_JURISDICTION])


def retention_refusal(*, code: str, retention_hours: int) -> str | None:
    """Why `retention_hours` is not allowed under `code`'s law (Korean and English), or None."""
    law = jurisdiction_of(code)
    if retention_hours >= law.min_retention_hours:
        return None
    return (
        f"보관 기간은 최소 {law.min_retention_days}일({law.min_retention_hours}시간) 이상이어야 "
        f"합니다 ({law.retention_reference}). / Footage must be kept at least "
        f"{law.min_retention_days} days ({law.min_retention_hours} hours) under "
        f"{law.retention_reference}."
    )
