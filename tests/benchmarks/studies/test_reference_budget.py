import json

import numpy as np
import pytest

from benchmarks.studies import reference_budget as reference
from keras_longtail import data as lt_data
from keras_longtail.recipes import defaults


def test_the_reference_optimizer_is_the_recipe():
    assert reference.WEIGHT_DECAY == defaults.WEIGHT_DECAY
    assert reference.PEAK_LEARNING_RATE == defaults.SGD_LEARNING_RATE
    assert reference.MOMENTUM == defaults.SGD_MOMENTUM


def test_the_batch_stream_is_shuffle_repeat_batch():
    permutations = [np.array([3, 0, 4, 1, 2]), np.array([1, 2, 0, 4, 3]), np.array([4, 3, 2, 1, 0])]
    drawn = iter(permutations)
    stream = reference.BatchStream(5, 4, lambda n: next(drawn))
    batches = [stream.next() for _ in range(3)]
    # Batches run across the passes: 12 indices = the first two permutations and two of the third.
    np.testing.assert_array_equal(np.concatenate(batches), np.concatenate(permutations)[:12])
    assert all(len(batch) == 4 for batch in batches)


def test_shot_accuracies_follow_the_shot_splits():
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    per_class = np.linspace(0.9, 0.1, 10)
    splits = lt_data.shot_splits(counts)
    result = reference.shot_accuracies(per_class, counts)
    assert result["overall"] == pytest.approx(100 * per_class.mean(), abs=0.01)
    assert result["many"] == pytest.approx(100 * per_class[splits.many].mean(), abs=0.01)
    assert result["medium"] == pytest.approx(100 * per_class[splits.medium].mean(), abs=0.01)
    assert splits.few == []
    assert result["few"] is None  # CIFAR-10-LT at IF 100 has no class under 20 images


def _record(epochs, seed, overall, last_epoch, finished):
    return {"epochs": epochs, "seed": seed, "finished": finished, "per_class": [overall] * 10,
            "accuracy": {"overall": overall, "many": overall + 5, "medium": overall - 20},
            "curve": [{"epoch": last_epoch, "overall": overall}]}


def test_summarize_gives_mean_std_per_budget_and_says_where_a_budget_stopped(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for seed, overall in enumerate((60.0, 62.0, 64.0)):
        (runs / f"ce-wd-e60-seed{seed}.json").write_text(json.dumps(_record(60, seed, overall, 60, True)))
        (runs / f"ce-wd-e200-seed{seed}.json").write_text(json.dumps(_record(200, seed, overall + 4, 190, False)))
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "ce-seed0.json").write_text(json.dumps(
        {"seed": 0, "accuracy": {"overall": 63.0, "many": 70.0, "medium": 30.0}, "per_class_accuracy": [63.0] * 10}))
    summary = reference.summarize(runs, tmp_path / "summary.json", ours_dir=ours, train_command="train ...")
    assert summary["reference"]["e60"]["overall"] == 62.0 and summary["reference"]["e60"]["overall_std"] == 2.0
    assert summary["reference"]["e60"]["finished"] and summary["reference"]["e60"]["last_epoch"] == 60
    assert summary["reference"]["e200"]["overall"] == 66.0
    assert not summary["reference"]["e200"]["finished"] and summary["reference"]["e200"]["last_epoch"] == 190
    assert summary["ours"]["e60"]["overall"] == 63.0 and summary["ours"]["e60"]["overall_std"] is None
    assert json.loads((tmp_path / "summary.json").read_text())["train_command"] == "train ..."

    (runs / "ce-wd-e60-seed2.json").write_text(json.dumps(_record(60, 2, 64.0, 50, False)))
    with pytest.raises(ValueError, match="Expected the e60 jobs to stop at one epoch"):
        reference.summarize(runs, tmp_path / "summary.json", ours_dir=ours)
    with pytest.raises(FileNotFoundError, match="Expected ce-wd-e"):
        reference.summarize(tmp_path / "ours", tmp_path / "summary.json", ours_dir=ours)


def test_command_line_refuses_bad_input_before_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        reference.main(["train", "--data", str(tmp_path / "missing.npz.xz"), "--output-dir", str(tmp_path)])
    assert "Expected --data to name the .npz.xz" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reference.main(["train", "--data", "x", "--epochs", "60,a", "--output-dir", str(tmp_path)])
    assert "Expected comma-separated integers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reference.main(["export", "--data-dir", str(tmp_path / "nowhere"), "--output", str(tmp_path / "a.npz.xz")])
    assert "Expected --data-dir to be a directory" in capsys.readouterr().err
    published = tmp_path / "published.json"
    published.write_text("{}")
    with pytest.raises(SystemExit):
        reference.main(["summarize", "--output-dir", str(tmp_path), "--output", str(published)])
    assert "Expected --output to name a new file" in capsys.readouterr().err and published.read_text() == "{}"


def _tiny_cifar_folder(root, per_class=3):
    from PIL import Image

    rng = np.random.default_rng(0)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for split in ("train", "test"):
        for name in names:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.jpg")
    return root


def test_export_writes_the_loaders_arrays(tmp_path):
    root = _tiny_cifar_folder(tmp_path / "cifar10-jpeg")
    shapes = reference.export(root, tmp_path / "data.npz.xz", imbalance_factor=1)
    assert shapes["train_x"] == [30, 32, 32, 3] and shapes["test_x"] == [30, 32, 32, 3]
    arrays = reference.load_arrays(tmp_path / "data.npz.xz")
    loaded = lt_data.load_cifar_lt("cifar10", 1, data_dir=str(root))
    images, labels = zip(*loaded.train.as_numpy_iterator())
    np.testing.assert_array_equal(arrays["train_x"], np.rint(np.stack(images) * 255).astype(np.uint8))
    np.testing.assert_array_equal(arrays["train_y"], np.asarray(labels))
    np.testing.assert_array_equal(arrays["class_counts"], [3] * 10)
    assert arrays["train_x"].dtype == np.uint8


def test_the_torch_batches_are_crops_and_flips_of_the_padded_images():
    torch = pytest.importorskip("torch")
    batch = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    out = reference.crop_and_flip(batch, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(batch.float() / 255.0, (4, 4, 4, 4))
    for image, source in zip(out, padded):
        candidates = [source[:, top:top + 32, left:left + 32] for top in range(9) for left in range(9)]
        candidates += [c.flip(2) for c in candidates]
        assert any(torch.equal(image, c) for c in candidates)


def test_a_short_torch_job_writes_its_curve(tmp_path):
    pytest.importorskip("torch")
    root = _tiny_cifar_folder(tmp_path / "cifar10-jpeg")
    reference.export(root, tmp_path / "data.npz.xz", imbalance_factor=1)
    record = reference.train_job(tmp_path / "data.npz.xz", 2, 0, tmp_path / "out", eval_every=1, device="cpu",
                                 max_steps=2)
    saved = json.loads((tmp_path / "out" / "ce-wd-e2-seed0.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert not saved["finished"] and saved["steps"] == 2 and [p["epoch"] for p in saved["curve"]] == [1, 2]
    assert len(saved["per_class"]) == 10 and 0.0 <= saved["accuracy"]["overall"] <= 100.0
    assert set(saved["accuracy_prior_undone"]) == {"overall", "many", "medium", "few"}
    assert "prior_undone" in saved["curve"][-1]


def test_parallel_jobs_run_as_processes_with_their_options(tmp_path):
    pytest.importorskip("torch")
    root = _tiny_cifar_folder(tmp_path / "cifar10-jpeg")
    reference.export(root, tmp_path / "data.npz.xz", imbalance_factor=1)
    failures = reference.run_jobs(tmp_path / "data.npz.xz", [1, 2], [0], tmp_path / "out", parallel=2, eval_every=1,
                                  max_steps=1)
    assert failures == []
    for epochs in (1, 2):
        saved = json.loads((tmp_path / "out" / f"ce-wd-e{epochs}-seed0.json").read_text())
        assert saved["steps"] == 1 and saved["curve"][-1]["epoch"] == 1 and not saved["finished"]


def test_per_class_accuracy_and_the_prior_undone_in_the_summary(tmp_path):
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert reference.per_class_accuracy(np.array([0, 1, 1, 1, 0, 0]), labels, 3) == [0.5, 1.0, 0.0]
    runs = tmp_path / "runs"
    runs.mkdir()
    for seed, undone in enumerate((68.0, 70.0)):
        record = _record(60, seed, 62.0, 60, True)
        record["accuracy_prior_undone"] = {"overall": undone, "many": 70.0, "medium": 60.0, "few": None}
        (runs / f"ce-wd-e60-seed{seed}.json").write_text(json.dumps(record))
    summary = reference.summarize(runs, tmp_path / "summary.json", ours_dir=tmp_path / "none")
    assert summary["reference"]["e60"]["overall_prior_undone"] == 69.0
    (runs / "ce-wd-e60-seed2.json").write_text(json.dumps(_record(60, 2, 62.0, 60, True)))  # an older job
    summary = reference.summarize(runs, tmp_path / "s.json", ours_dir=tmp_path)
    assert "overall_prior_undone" not in summary["reference"]["e60"]
