import json

import numpy as np
import pytest

from benchmarks.studies import speed_vs_pytorch as speed
from keras_longtail import recipes


def test_parse_setting():
    assert speed.parse_setting("steps_per_execution=8,policy=mixed_bfloat16,jit_compile=true,cache=false") == {
        "steps_per_execution": 8, "policy": "mixed_bfloat16", "jit_compile": True, "cache": False}
    assert speed.parse_setting("") == {}
    with pytest.raises(ValueError, match="Expected settings KEY=VALUE"):
        speed.parse_setting("threads=2")


def test_the_pytorch_schedule_is_the_cli_schedule():
    epochs, steps = 10, 7
    schedule = recipes.ldam_schedule(0.1, epochs, steps)
    for step in range(epochs * steps + 3):
        assert speed._ldam_learning_rate(step, epochs * steps) == pytest.approx(float(schedule(step)), rel=1e-6)


def test_the_pytorch_resnet32_is_the_reference_size():
    torch = pytest.importorskip("torch")
    from keras_longtail import models

    network = speed.pytorch_resnet32()
    assert sum(p.numel() for p in network.parameters()) == speed.RESNET32_PARAMETERS == sum(
        int(np.prod(w.shape)) for w in models.resnet32(10).trainable_weights)
    # Option A: the stride-2 blocks' shortcuts subsample and zero-pad the channels (no parameters).
    assert network(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    block = network.blocks[5]
    x = torch.randn(1, 16, 32, 32)
    shortcut = torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8))
    assert torch.equal(shortcut[:, 8:24], x[:, :, ::2, ::2]) and block.pad == 8


def test_the_pytorch_batches_are_crops_and_flips_of_the_padded_images():
    pytest.importorskip("torch")
    import torch

    images, labels = speed.make_data(40, seed=1)
    trainer = speed.TorchTrainer(images, labels, batch_size=16)
    index = trainer.order[:16].numpy()
    batch, batch_labels = trainer._batch()
    assert batch.shape == (16, 3, 32, 32) and torch.equal(batch_labels, torch.from_numpy(labels[index]).long())
    flips = 0
    for image, i in zip(batch.numpy(), index):
        padded = np.pad(images[i].astype(np.float32).transpose(2, 0, 1) / 255.0, ((0, 0), (4, 4), (4, 4)))
        windows = [(flip, padded[:, t:t + 32, l:l + 32][:, :, ::-1] if flip else padded[:, t:t + 32, l:l + 32])
                   for t in range(9) for l in range(9) for flip in (False, True)]
        matches = [flip for flip, window in windows if np.allclose(window, image)]
        assert matches, "not a window of the padded image"
        flips += matches[0]
    assert 0 < flips < 16


@pytest.mark.slow
def test_ab_writes_paired_rounds(tmp_path):
    output = tmp_path / "ab.json"
    assert speed.main(["--ab", "steps_per_execution=1", "steps_per_execution=2", "--steps", "2", "--rounds", "2",
                       "--batch-size", "8", "--num-examples", "64", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    rounds = result["modes"]["train"]["rounds"]
    assert [r["side"][0] for r in rounds] == ["A", "B", "A", "B"]
    assert len(result["modes"]["train"]["ratios"]) == 2 and all(len(r["loadavg_before"]) == 3 for r in rounds)
    assert len(result["modes"]["train"]["cpu_ratios"]) == 2 and all(r["cpu_seconds"] > 0 for r in rounds)


@pytest.mark.slow
def test_side_by_side_with_pytorch(tmp_path):
    pytest.importorskip("torch")
    output = tmp_path / "speed.json"
    assert speed.main(["--steps", "1", "--rounds", "1", "--batch-size", "8", "--num-examples", "64",
                       "--modes", "train_fp32,inference", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert result["parameters"] == {"ours": 464154, "pytorch": 464154}
    assert set(result["modes"]) == {"train_fp32", "inference"}
    assert [r["side"] for r in result["modes"]["train_fp32"]["rounds"]] == ["ours", "pytorch"]
    assert result["modes"]["inference"]["median_ratio"] > 0


def test_batched_crop_and_flip_gives_windows_of_the_padded_images():
    import tensorflow as tf

    tf.random.set_seed(0)
    images = np.random.default_rng(0).random((12, 8, 8, 3)).astype(np.float32)
    cropped, labels = speed.batched_crop_and_flip(tf.constant(images), tf.range(12))
    assert cropped.shape == images.shape and labels.shape == (12,)
    flips = 0
    for image, original in zip(cropped.numpy(), images):
        padded = np.pad(original, ((4, 4), (4, 4), (0, 0)))
        matches = [flip for t in range(9) for l in range(9) for flip in (False, True)
                   if np.array_equal(padded[t:t + 8, l:l + 8][:, ::-1] if flip else padded[t:t + 8, l:l + 8], image)]
        assert matches
        flips += matches[0]
    assert 0 < flips < 12
