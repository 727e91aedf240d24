import json

import pytest

from benchmarks.studies import gbg_groups


def _write(directory, name, **results):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(results))


def test_groups_and_places_against_ce(tmp_path):
    suite = tmp_path / "toy-short"
    # group 0: classes 0 (1000) and 2 (50, 20x smaller: dominated); group 1: classes 1 (300) and 3 (100, 3x).
    _write(suite, "gbg-l2-seed0.json", run="gbg-l2", seed=0, groups=[0, 1, 0, 1],
           class_counts=[1000, 300, 50, 100], per_class_accuracy=[90.0, 80.0, 0.0, 40.0],
           accuracy={"overall": 52.5}, gbg_normalization="l2")
    _write(suite, "ce-seed0.json", run="ce", seed=0, per_class_accuracy=[95.0, 70.0, 10.0, 20.0])
    rows = gbg_groups.group_rows(json.loads((suite / "gbg-l2-seed0.json").read_text()))
    assert rows == [(0, pytest.approx(1050 / 1450), [(0, 1000, 90.0), (2, 50, 0.0)]),
                    (1, pytest.approx(400 / 1450), [(1, 300, 80.0), (3, 100, 40.0)])]
    text = gbg_groups.report(tmp_path)
    assert "| 0 | 0.724 | 0 (1000): 90, 2 (50): 0 |" in text
    # largest: classes 0 and 1 (85 vs CE 82.5); within 10x: class 3; dominated: class 2.
    assert "| toy-short/gbg-l2 | 85.0 (2, 0 at 0; CE 82.5) | 40.0 (1, 0 at 0; CE 20.0) | 0.0 (1, 1 at 0; CE 10.0) |" \
        in text


def test_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="gbg"):
        gbg_groups.report(tmp_path)
    with pytest.raises(ValueError, match="one length"):
        gbg_groups.group_rows({"groups": [0, 1], "class_counts": [5], "per_class_accuracy": [1.0, 2.0]})
