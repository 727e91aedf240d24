import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import adjusted_rand_score

from keras_longtail import models
from keras_longtail.gbg import ClassGrouping
from keras_longtail.gbg import _class_gradients
from keras_longtail.gbg import group_by_similarity
from keras_longtail.gbg import group_classes
from tests import helpers


def _planted(num_classes, num_groups, dim, noise, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_groups, dim))
    truth = rng.integers(0, num_groups, num_classes)
    truth[:num_groups] = np.arange(num_groups)  # every group used
    scales = rng.uniform(0.1, 10.0, (num_classes, 1))  # cosine ignores the magnitude
    return (centres[truth] + noise * rng.normal(size=(num_classes, dim))) * scales, truth


@pytest.mark.parametrize("num_classes, num_groups", [(12, 3), (100, 4), (600, 8)])
def test_recovers_planted_groups(num_classes, num_groups):
    gradients, truth = _planted(num_classes, num_groups, dim=64, noise=0.6)
    grouping = group_by_similarity(gradients, num_groups, seed=0)
    assert adjusted_rand_score(truth, grouping.groups) == 1.0
    assert grouping.groups[0] == 0 and grouping.num_groups == num_groups
    np.testing.assert_allclose(np.diag(grouping.similarity), 1.0)
    unit = gradients / np.linalg.norm(gradients, axis=1, keepdims=True)
    np.testing.assert_allclose(grouping.similarity, unit @ unit.T, atol=1e-5)


def test_limiting_group_counts_and_zero_gradients():
    gradients, _ = _planted(7, 2, dim=8, noise=0.1)
    assert group_by_similarity(gradients, 1).groups == [0] * 7
    assert group_by_similarity(gradients, 7).groups == list(range(7))
    gradients[3] = 0.0  # an absent class
    grouping = group_by_similarity(gradients, 2, seed=0)
    assert np.all(np.isfinite(grouping.similarity)) and grouping.similarity[3, 0] == 0.0


def test_runs_at_moderate_size():
    gradients, truth = _planted(1500, 4, dim=128, noise=1.0, seed=3)
    grouping = group_by_similarity(gradients, 4, seed=0, keep_similarity=False)
    assert grouping.similarity is None and sorted(set(grouping.groups)) == [0, 1, 2, 3]
    assert adjusted_rand_score(truth, grouping.groups) > 0.95


# ---------------------------------------------------------------- class gradients on a model
X = np.random.default_rng(1).normal(size=(48, 5)).astype(np.float32)
Y = np.array([0, 1, 2, 3] * 10 + [0, 0, 1, 1, 2, 2, 0, 0])


def _model():
    keras.utils.set_random_seed(0)
    return models.mlp(5, (5,), hidden_units=(7,))  # class 4 never occurs


def _dataset():
    return tf.data.Dataset.from_tensor_slices((X, Y)).batch(16)


def _reference(model, variables):
    """Per-class average gradient of the mean class loss, by autodiff on each class's examples."""
    rows = []
    for k in range(5):
        selected = Y == k
        if not selected.any():
            rows.append(np.zeros(sum(int(np.prod(v.shape)) for v in variables)))
            continue
        with tf.GradientTape() as tape:
            logits = model(X[selected], training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(Y[selected], logits, from_logits=True))
        rows.append(np.concatenate([g.numpy().reshape(-1) for g in tape.gradient(loss, variables)]))
    return np.array(rows)


def test_classifier_gradients_equal_autodiff():
    model = _model()
    layer = model.get_layer("classifier")
    averages, counts = _class_gradients.classifier_gradients(
        model, _dataset(), "classifier", 5, None, _class_gradients.default_loss, True, 0)
    np.testing.assert_array_equal(counts, np.bincount(Y, minlength=5))
    expected = _reference(model, [layer.kernel, layer.bias])
    kernel, bias = expected[:, :35].reshape(5, 7, 5), expected[:, 35:]
    ours = averages.reshape(5, 8, 5)  # rows of [features, 1] x logits
    np.testing.assert_allclose(ours[:, :7, :], kernel, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours[:, 7, :], bias, rtol=1e-4, atol=1e-6)
    assert not averages[4].any()


def test_backbone_gradients_equal_autodiff():
    model = _model()
    averages, _ = _class_gradients.backbone_gradients(
        model, _dataset(), "classifier", 5, None, _class_gradients.default_loss, False, 0)
    variables = [v for v in model.trainable_variables if v.path.split("/")[0] != "classifier"]
    assert len(variables) == 2  # hidden1 kernel and bias
    # training=False: the mlp has no batch norm, so per-class averages equal the whole-class gradient
    np.testing.assert_allclose(averages, _reference(model, variables), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("gradients", ["classifier", "backbone"])
def test_sketches_preserve_cosines(gradients):
    model = _model()
    compute = (_class_gradients.classifier_gradients if gradients == "classifier"
               else _class_gradients.backbone_gradients)
    exact, _ = compute(model, _dataset(), "classifier", 5, None, _class_gradients.default_loss, True, 0)
    errors = []
    for seed in range(3):
        sketched, _ = compute(model, _dataset(), "classifier", 5, 4096, _class_gradients.default_loss, True, seed)
        assert sketched.shape == (5, 4096)
        errors.append(group_by_similarity(sketched[:4], 1).similarity - group_by_similarity(exact[:4], 1).similarity)
    assert np.abs(errors).mean() < 0.05 and np.abs(errors).max() < 0.2


def test_group_classes_end_to_end():
    model = _model()
    for gradients, projection_dim in (("classifier", None), ("classifier", 256), ("backbone", 256)):
        grouping = group_classes(model, _dataset(), 2, gradients=gradients, projection_dim=projection_dim, seed=0)
        assert len(grouping.groups) == 5 and set(grouping.groups) <= {0, 1}
        assert grouping.class_counts_ == np.bincount(Y, minlength=5).tolist()


def test_group_classes_defaults_are_the_official_codes():
    # GBG_v1's cifar_partition_by_grad_nogroup_bcl: backbone gradients (all but the classifier), model.eval()
    # (batch norm on its moving statistics), per-class mean gradients, cosine + 1, cluster_qr.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(7, name="hidden")(inputs)
    normalized = keras.layers.BatchNormalization(name="bn")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(5, name="classifier")(keras.layers.ReLU()(normalized)))
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.linspace(-1.0, 1.0, 7))  # inference mode must differ from batch statistics
    bn.moving_variance.assign(np.linspace(0.2, 3.0, 7))
    variables = [v for v in model.trainable_variables if v.path.split("/")[0] != "classifier"]
    rows = []
    for k in range(5):
        selected = Y == k
        if not selected.any():
            rows.append(np.zeros(sum(int(np.prod(v.shape)) for v in variables)))
            continue
        with tf.GradientTape() as tape:
            logits = model(X[selected], training=False)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(Y[selected], logits, from_logits=True))
        rows.append(np.concatenate([g.numpy().reshape(-1) for g in tape.gradient(loss, variables)]))
    expected = group_by_similarity(np.array(rows), 2, seed=0)
    grouping = group_classes(model, _dataset(), 2, seed=0)
    np.testing.assert_allclose(grouping.similarity, expected.similarity, atol=1e-5)
    assert grouping.groups == expected.groups
    for other in ({"gradients": "classifier"}, {"training": True}):
        similarity = group_classes(model, _dataset(), 2, seed=0, **other).similarity
        assert np.abs(similarity - expected.similarity).max() > 1e-2, other


def test_group_classes_leaves_the_model_unchanged():
    keras.utils.set_random_seed(0)
    model = models.resnet32(4, input_shape=(8, 8, 3))
    before = [w.copy() for w in model.get_weights()]
    x = np.random.default_rng(0).uniform(size=(16, 8, 8, 3)).astype(np.float32)
    grouping = group_classes(model, tf.data.Dataset.from_tensor_slices((x, np.arange(16) % 4)).batch(8), 2,
                             projection_dim=64, seed=0)
    assert grouping.num_classes == 4
    for want, have in zip(before, model.get_weights()):
        np.testing.assert_array_equal(have, want)


def test_class_grouping_serialization():
    grouping = ClassGrouping([0, 2, 1, 2], num_groups=4, similarity=np.eye(4))
    revived = helpers.assert_config_round_trip(grouping)
    assert revived == grouping and revived.group_sizes() == [1, 1, 2, 0]
    np.testing.assert_array_equal(revived.similarity, np.eye(4))
    small = ClassGrouping.from_json(grouping.to_json(include_similarity=False))
    assert small == grouping and small.similarity is None
    assert "similarity" not in json.loads(grouping.to_json(include_similarity=False))


def test_bad_input():
    gradients, _ = _planted(6, 2, dim=4, noise=0.1)
    with pytest.raises(ValueError, match="num_groups"):
        group_by_similarity(gradients, 0)
    with pytest.raises(ValueError, match="num_groups"):
        group_by_similarity(gradients, 7)
    with pytest.raises(ValueError, match="class_gradients"):
        group_by_similarity(np.ones(6), 2)
    with pytest.raises(ValueError, match="class_gradients"):
        group_by_similarity(np.full((3, 2), np.nan), 2)
    model = _model()
    with pytest.raises(ValueError, match="num_groups"):
        group_classes(model, _dataset(), 6)
    with pytest.raises(ValueError, match="num_groups"):
        group_classes(model, _dataset(), 0)
    with pytest.raises(ValueError, match="empty"):
        group_classes(model, _dataset().take(0), 2)
    with pytest.raises(ValueError, match="layer"):
        group_classes(model, _dataset(), 2, layer="head")
    with pytest.raises(ValueError, match="gradients"):
        group_classes(model, _dataset(), 2, gradients="all")
    with pytest.raises(ValueError, match="projection_dim"):
        group_classes(model, _dataset(), 2, projection_dim=0)
    with pytest.raises(ValueError, match="num_groups"):
        ClassGrouping([0, 3], num_groups=2)
    with pytest.raises(ValueError, match="groups"):
        ClassGrouping([0, -1])
    with pytest.raises(ValueError, match="similarity"):
        ClassGrouping([0, 1], similarity=np.eye(3))


@pytest.fixture
def dtype_policy():
    """Sets Keras' global dtype policy for the test (`dtype_policy(name)`); always restores float32."""
    try:
        yield keras.config.set_dtype_policy
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_group_classes_under_mixed_precision(dtype_policy, policy):
    # Issue 19.2: the exact classifier path mixed float32 and bfloat16 in one einsum. The per-class gradients
    # are now taken in float32 from the 16-bit forward pass: their cosines stay those of the float32 model.
    expected = {}
    for gradients in ("classifier", "backbone"):
        compute = (_class_gradients.classifier_gradients if gradients == "classifier"
                   else _class_gradients.backbone_gradients)
        exact, _ = compute(_model(), _dataset(), "classifier", 5, None, _class_gradients.default_loss, True, 0)
        expected[gradients] = group_by_similarity(exact[:4], 1).similarity
    dtype_policy(policy)
    model = _model()
    assert model.get_layer("classifier").compute_dtype == policy.split("_")[1]
    for gradients in ("classifier", "backbone"):
        compute = (_class_gradients.classifier_gradients if gradients == "classifier"
                   else _class_gradients.backbone_gradients)
        averages, _ = compute(model, _dataset(), "classifier", 5, None, _class_gradients.default_loss, True, 0)
        assert averages.dtype == np.float64 and np.all(np.isfinite(averages))
        np.testing.assert_allclose(group_by_similarity(averages[:4], 1).similarity, expected[gradients], atol=0.03)
        for projection_dim in (None, 64):
            grouping = group_classes(model, _dataset(), 2, gradients=gradients, projection_dim=projection_dim, seed=0)
            assert len(grouping.groups) == 5 and set(grouping.groups) <= {0, 1}


def test_within_group_imbalance_against_a_loop():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 4, size=12)
    counts = rng.integers(1, 5000, size=12)
    grouping = ClassGrouping(groups, num_groups=5)  # group 4 empty
    expected = [max(counts[groups == g]) / counts[c] for c, g in enumerate(groups)]
    np.testing.assert_allclose(grouping.within_group_imbalance(counts), expected)
    # limiting cases: one class per group is 1; a class without examples next to one with some is inf
    assert ClassGrouping([0, 1, 2]).within_group_imbalance([5000, 50, 7]) == [1.0, 1.0, 1.0]
    assert ClassGrouping([0, 0, 1]).within_group_imbalance([10, 0, 0]) == [1.0, float("inf"), 1.0]
    for bad in ([1, 2], [1, -1, 3], [1, float("nan"), 3]):
        with pytest.raises(ValueError, match=r"Expected `class_counts` to hold 3 .*Received: class_counts="):
            ClassGrouping([0, 0, 1]).within_group_imbalance(bad)
