from __future__ import annotations

from pathlib import Path

import pytest

from ml.datasets import DatasetLayoutError, label_from_name, scan_dataset
from tests.ml.conftest import copy_clip


def test_surveillance_layout_uses_labels_csv_groups(fixture_dir):
    scan = scan_dataset(fixture_dir)
    assert scan.layout == "labels.csv"
    assert len(scan.records) == 8
    assert sorted(r.label for r in scan.records) == [0] * 4 + [1] * 4
    by_name = {r.path.name: r for r in scan.records}
    assert by_name["fi044.mp4"].group == "5" == by_name["nofi023.mp4"].group
    assert scan.skipped == []


def test_label_folders_without_csv(tmp_path, fight_clip, calm_clip):
    copy_clip(fight_clip, tmp_path / "fight" / "fi001.mp4")
    copy_clip(calm_clip, tmp_path / "noFight" / "nofi001.mp4")
    (tmp_path / "fight" / "readme.txt").write_text("not a clip")
    scan = scan_dataset(tmp_path)
    assert scan.layout == "label-folders"
    assert {(r.path.name, r.label) for r in scan.records} == {("fi001.mp4", 1), ("nofi001.mp4", 0)}


def test_rwf2000_layout(tmp_path, fight_clip, calm_clip):
    copy_clip(fight_clip, tmp_path / "train" / "Fight" / "abc_0.avi")
    copy_clip(fight_clip, tmp_path / "train" / "Fight" / "abc_1.avi")
    copy_clip(calm_clip, tmp_path / "val" / "NonFight" / "xyz_0.avi")
    scan = scan_dataset(tmp_path)
    assert scan.layout == "rwf-2000"
    groups = {r.path.name: (r.label, r.group) for r in scan.records}
    assert groups == {"abc_0.avi": (1, "abc"), "abc_1.avi": (1, "abc"), "xyz_0.avi": (0, "xyz")}


def test_hockey_layout(tmp_path, fight_clip, calm_clip):
    copy_clip(fight_clip, tmp_path / "fi1_xvid.avi")
    copy_clip(calm_clip, tmp_path / "no1_xvid.avi")
    copy_clip(calm_clip, tmp_path / "other.avi")
    with pytest.warns(UserWarning, match="other.avi"):
        scan = scan_dataset(tmp_path)
    assert scan.layout == "hockey"
    assert {(r.path.name, r.label) for r in scan.records} == {
        ("fi1_xvid.avi", 1),
        ("no1_xvid.avi", 0),
    }
    assert len(scan.skipped) == 1


def test_real_life_violence_layout(tmp_path, fight_clip, calm_clip):
    copy_clip(fight_clip, tmp_path / "Violence" / "V_1.mp4")
    copy_clip(calm_clip, tmp_path / "NonViolence" / "NV_1.mp4")
    scan = scan_dataset(tmp_path)
    assert scan.layout == "rlvs"
    assert {(r.path.name, r.label) for r in scan.records} == {("V_1.mp4", 1), ("NV_1.mp4", 0)}


def test_review_export_layout_with_labels_csv(tmp_path, fight_clip, calm_clip):
    copy_clip(fight_clip, tmp_path / "abuse" / "a.mp4")
    copy_clip(calm_clip, tmp_path / "not_abuse" / "b.mp4")
    copy_clip(calm_clip, tmp_path / "not_abuse" / "unlisted.mp4")
    (tmp_path / "labels.csv").write_text(
        "clip,label\nabuse/a.mp4,abuse\nnot_abuse/b.mp4,not_abuse\nnot_abuse/gone.mp4,not_abuse\n"
        "../../etc/passwd,abuse\n"
    )
    with pytest.warns(UserWarning):
        scan = scan_dataset(tmp_path)
    assert {(r.path.name, r.label) for r in scan.records} == {("a.mp4", 1), ("b.mp4", 0)}
    reasons = " ".join(reason for _, reason in scan.skipped)
    assert "missing" in reasons and "outside" in reasons and "not listed" in reasons


def test_generic_label_folders_without_csv(tmp_path, fight_clip, calm_clip):
    copy_clip(fight_clip, tmp_path / "abuse" / "a.mp4")
    copy_clip(calm_clip, tmp_path / "not_abuse" / "b.mp4")
    scan = scan_dataset(tmp_path)
    assert {(r.path.name, r.label) for r in scan.records} == {("a.mp4", 1), ("b.mp4", 0)}


def test_unknown_layout_is_a_clear_error(tmp_path: Path):
    (tmp_path / "misc").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"no labels\.csv"):
        scan_dataset(tmp_path)
    with pytest.raises(DatasetLayoutError, match="not a folder"):
        scan_dataset(tmp_path / "absent")


def test_label_names():
    assert label_from_name("NonViolence") == 0
    assert label_from_name(" Fight ") == 1
    assert label_from_name("not_abuse") == 0
    assert label_from_name("maybe") is None
