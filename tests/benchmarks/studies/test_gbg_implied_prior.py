"""The class shares of GBG's loss and the prior corrections of `benchmarks.studies.gbg_implied_prior`."""

import json
import types

import numpy as np
import pytest
import tensorflow as tf

from benchmarks.studies import gbg_implied_prior as study


def _reference_shares(labels, groups, alpha):
    """Per-example loop: example i of group g weighs alpha_g / n_g, alpha renormalized over present groups."""
    present = sorted({groups[y] for y in labels})
    total = sum(alpha[g] for g in present)
    shares = np.zeros(len(groups))
    for y in labels:
        g = groups[y]
        shares[y] += alpha[g] / total / sum(groups[z] == g for z in labels)
    return shares


def test_batch_shares_match_a_per_example_loop():
    rng = np.random.default_rng(0)
    groups = np.array([0, 1, 1, 2, 0])
    alpha = np.array([0.5, 0.2, 0.3])
    for _ in range(20):
        labels = rng.integers(0, 5, size=int(rng.integers(1, 12)))
        np.testing.assert_allclose(study.batch_class_shares(labels, groups, alpha, 5),
                                   _reference_shares(labels, groups, alpha), atol=1e-12)


def test_one_group_gives_each_class_its_batch_frequency_as_plain_ce_does():
    labels = np.array([0, 0, 1, 2, 2, 2])
    np.testing.assert_allclose(study.batch_class_shares(labels, np.zeros(3, np.int64), np.ones(1), 3),
                               [2 / 6, 1 / 6, 3 / 6])


def test_shuffled_batches_with_one_group_give_the_training_prior():
    counts = [60, 30, 10]
    shares, per_batch = study.class_loss_shares([0, 0, 0], counts, "random", batches=40, seed=0)
    # 40 batches of 128 from 100 examples reshuffled each pass: every example equally often, up to the last pass
    np.testing.assert_allclose(shares, np.array(counts) / 100, atol=0.02)
    np.testing.assert_allclose(per_batch, np.array(counts) * 1.28, rtol=0.05)


def test_gac_puts_a_lone_class_in_every_batch_with_its_group_weight():
    counts = [400, 200, 5]
    shares, per_batch = study.class_loss_shares([0, 0, 1], counts, "gac", batches=10, seed=0)
    np.testing.assert_allclose(shares[2], 0.5)  # alone in a group present in every batch, uniform alpha over 2
    assert per_batch[2] >= 1.0
    np.testing.assert_allclose(shares.sum(), 1.0)
    held, _ = study.class_loss_shares([0, 0, 1], counts, "gac", alpha=[0.9, 0.1], batches=10, seed=0)
    np.testing.assert_allclose(held[2], 0.1)


def test_bad_alpha_and_groups_are_refused():
    with pytest.raises(ValueError, match="Expected 2 non-negative alpha values"):
        study.class_loss_shares([0, 0, 1], [4, 3, 2], "random", alpha=[1.0], batches=1)
    with pytest.raises(ValueError, match="Expected one group per class"):
        study.class_loss_shares([0, 1], [4, 3, 2], "random", batches=1)
    with pytest.raises(ValueError, match="Expected sampler"):
        study.class_loss_shares([0, 0, 1], [4, 3, 2], "shuffled", batches=1)
    with pytest.raises(ValueError, match="present in the batch"):
        study.batch_class_shares(np.array([0, 1]), np.array([0, 0, 1]), np.array([0.0, 1.0]), 3)


def test_priors_are_undone_by_subtracting_their_logs():
    counts = [100, 10]
    logits = np.array([[4.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 0.0]], np.float32)
    labels = np.array([0, 1, 1, 1])
    loaded = types.SimpleNamespace(test=tf.data.Dataset.from_tensor_slices((logits, labels)), class_counts=counts)
    result = study.evaluate_with_priors(lambda x, training: x, loaded, shares=np.array([0.9, 0.1]))
    # as trained: [0, 0, 1, 0]; log(0.9 / 0.1) = 2.2 (and log(100 / 10) = 2.3) moves only the example whose class-0
    # margin is below it (margin 1) to class 1, not those at margins 3 and 4
    assert result["as_trained"]["per_class"] == [100.0, 33.33]
    assert result["implied_prior_undone"]["per_class"] == [100.0, 66.67]
    assert result["training_prior_undone"]["per_class"] == [100.0, 66.67]


def test_the_command_line_refuses_what_it_cannot_do():
    with pytest.raises(SystemExit):
        study.main(["--alpha", "model", "--groups", "0,1"])
    with pytest.raises(SystemExit):
        study.main([])
    with pytest.raises(SystemExit):
        study.main(["--groups", "0,1", "--alpha", "a,b"])


def test_the_command_line_writes_the_shares(tmp_path):
    output = tmp_path / "shares.json"
    study.main(["--groups", "0,0,1,2,2,1,1,2,3,1", "--batches", "3", "--output", str(output)])
    result = json.loads(output.read_text())
    assert result["groups"] == [0, 0, 1, 2, 2, 1, 1, 2, 3, 1]
    assert abs(sum(result["loss_share"]) - 1.0) < 1e-3
    assert result["loss_share"][8] == 0.25  # class 8 alone in group 3, in every GAC batch
