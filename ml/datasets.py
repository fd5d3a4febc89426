"""Readers that turn the usual violence-dataset folder layouts into labelled clip records.

Every reader returns ``ClipRecord(path, label, group)`` with ``label`` 1 for violent and 0 for
non-violent. ``group`` identifies the source video (or the best proxy available) so that
cross-validation can keep all clips of one source on the same side of a split.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v"})

VIOLENT_NAMES = frozenset(
    {"fight", "fights", "violence", "violent", "abuse", "positive", "1", "yes", "true"}
)
NON_VIOLENT_NAMES = frozenset(
    {
        "nofight",
        "no_fight",
        "nonfight",
        "non_fight",
        "no-fight",
        "non-fight",
        "noviolence",
        "nonviolence",
        "non_violence",
        "non-violence",
        "not_abuse",
        "not-abuse",
        "notabuse",
        "no_abuse",
        "nonabuse",
        "non_abuse",
        "negative",
        "normal",
        "0",
        "no",
        "false",
    }
)


class DatasetLayoutError(Exception):
    """The folder matches none of the supported dataset layouts."""


@dataclass(frozen=True)
class ClipRecord:
    path: Path
    label: int
    group: str


@dataclass
class DatasetScan:
    """The clips found in a folder, the layout recognised and what was skipped and why."""

    layout: str
    records: list[ClipRecord]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: Path | str, reason: str) -> None:
        message = f"skipping {path}: {reason}"
        warnings.warn(message, stacklevel=2)
        logger.warning(message)
        self.skipped.append((str(path), reason))


def label_from_name(name: str) -> int | None:
    """Map a folder or labels.csv label to 1 (violent), 0 (non-violent) or None (unknown)."""
    key = name.strip().lower()
    if key in NON_VIOLENT_NAMES:
        return 0
    if key in VIOLENT_NAMES:
        return 1
    return None


def _video_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def _child(folder: Path, *names: str) -> Path | None:
    wanted = {n.lower() for n in names}
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name.lower() in wanted:
            return child
    return None


def _stem_group(path: Path) -> str:
    # Without source metadata every clip is its own group; the numeric-free stem at least ties
    # together clips named like "camera3_001", "camera3_002".
    stem = re.sub(r"[\d_\-\s]+$", "", path.stem)
    return stem or path.stem


def read_labels_csv(root: Path, scan: DatasetScan) -> list[ClipRecord] | None:
    """Read ``labels.csv`` (columns clip,label[,source_group]) when the folder has one."""
    csv_path = root / "labels.csv"
    if not csv_path.is_file():
        return None
    records: list[ClipRecord] = []
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"clip", "label"} <= set(reader.fieldnames):
            scan.skip(csv_path, "labels.csv lacks the columns clip,label; using folder names")
            return None
        for row in reader:
            clip = (row.get("clip") or "").strip()
            label = label_from_name(row.get("label") or "")
            if not clip or label is None:
                scan.skip(f"{csv_path}:{clip}", f"unknown label {row.get('label')!r}")
                continue
            path = (root / clip).resolve()
            if root.resolve() not in path.parents:
                scan.skip(f"{csv_path}:{clip}", "path points outside the dataset folder")
                continue
            if not path.is_file():
                scan.skip(path, "listed in labels.csv but missing")
                continue
            source_group = (row.get("source_group") or "").strip()
            group = source_group or f"{label}:{_stem_group(path)}"
            records.append(ClipRecord(path, label, group))
    return records


def _label_folders(root: Path) -> list[tuple[Path, int]]:
    folders = []
    for child in sorted(root.iterdir()):
        if child.is_dir():
            label = label_from_name(child.name)
            if label is not None:
                folders.append((child, label))
    return folders


def _records_from_label_folders(
    folders: Iterable[tuple[Path, int]], group_prefix: str = ""
) -> list[ClipRecord]:
    records = []
    for folder, label in folders:
        for path in _video_files(folder):
            records.append(ClipRecord(path, label, f"{group_prefix}{label}:{_stem_group(path)}"))
    return records


def scan_dataset(root: str | os.PathLike[str]) -> DatasetScan:
    """Recognise the layout of ``root`` and list its labelled clips.

    Supported, tried in this order: a ``labels.csv`` at the root (surveillance-fight, the
    expert-review export); RWF-2000 (``train|val/Fight|NonFight``); label folders such as
    ``fight/ noFight/``, ``Violence/ NonViolence/``, ``abuse/ not_abuse/``; Hockey Fights
    (flat ``fi*`` / ``no*`` files).
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise DatasetLayoutError(f"{root_path} is not a folder")
    scan = DatasetScan(layout="unknown", records=[])

    from_csv = read_labels_csv(root_path, scan)
    if from_csv is not None:
        scan.layout = "labels.csv"
        scan.records = from_csv
        _note_unlisted_videos(root_path, from_csv, scan)
        return scan

    splits = [
        s for s in (_child(root_path, "train"), _child(root_path, "val", "valid", "test")) if s
    ]
    rwf_folders = [(f, lab) for split in splits for f, lab in _label_folders(split)]
    if rwf_folders:
        scan.layout = "rwf-2000"
        # RWF-2000 names clips after their YouTube source ("<id>_<n>.avi"): the prefix is the
        # source video, which keeps its clips together across folds.
        scan.records = [
            ClipRecord(r.path, r.label, r.path.stem.split("_")[0])
            for r in _records_from_label_folders(rwf_folders)
        ]
        return scan

    label_folders = _label_folders(root_path)
    if label_folders:
        names = {f.name.lower() for f, _ in label_folders}
        scan.layout = "rlvs" if names & {"violence", "nonviolence"} else "label-folders"
        scan.records = _records_from_label_folders(label_folders)
        return scan

    flat = _video_files(root_path)
    hockey = [p for p in flat if p.name.lower().startswith(("fi", "no"))]
    if hockey:
        scan.layout = "hockey"
        # Hockey clips carry no source id; each clip is its own group.
        scan.records = [
            ClipRecord(p, 0 if p.name.lower().startswith("no") else 1, p.stem) for p in hockey
        ]
        for p in flat:
            if p not in hockey:
                scan.skip(p, "file name starts with neither 'fi' nor 'no'")
        return scan

    raise DatasetLayoutError(
        f"{root_path}: no labels.csv, train|val/<label>, <label>/ folders or fi*/no* videos found"
    )


def _note_unlisted_videos(root: Path, listed: list[ClipRecord], scan: DatasetScan) -> None:
    known = {r.path for r in listed}
    for folder, _label in _label_folders(root):
        for path in _video_files(folder):
            if path.resolve() not in known:
                scan.skip(path, "video not listed in labels.csv")
