import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.dual_phase import MemoryRetentiveLoss
from tests import helpers


def _reference(old, new, similarity="cosine", temperature=1.0):
    """Eq. 6-8 in float64: μ_i for every old node i."""
    old, new = old.astype(np.float64), new.astype(np.float64)
    mu = np.zeros(len(old))
    for i, z in enumerate(old):
        if similarity == "cosine":
            s = np.array([z @ n / (np.linalg.norm(z) * np.linalg.norm(n)) for n in new])
        else:
            s = new @ z
        a = np.exp(s / temperature) / np.exp(s / temperature).sum()  # Eq. 6, over j
        mu[i] = sum(a_j * np.linalg.norm(z - n) for a_j, n in zip(a, new))  # Eq. 7
    return mu


def _features(seed, batch=12, dim=5):
    rng = np.random.default_rng(seed)
    old = np.maximum(rng.normal(size=(batch, dim)), 0.0) + 0.05
    return old.astype("float32"), (old + rng.normal(scale=0.7, size=old.shape)).astype("float32")


@pytest.mark.parametrize("similarity, temperature", [("cosine", 1.0), ("dot", 1.0), ("cosine", 0.1)])
def test_matches_numpy_reference(similarity, temperature):
    old, new = _features(0)
    mu = _reference(old, new, similarity, temperature)
    per_node = MemoryRetentiveLoss(similarity, temperature=temperature, reduction=None)(old, new)
    np.testing.assert_allclose(per_node.numpy(), mu, rtol=1e-5)
    assert float(MemoryRetentiveLoss(similarity, temperature=temperature)(old, new)) == pytest.approx(
        mu.sum(), rel=1e-5)  # Eq. 8: a sum over the old nodes
    mean = MemoryRetentiveLoss(similarity, temperature=temperature, reduction="sum_over_batch_size")(old, new)
    assert float(mean) == pytest.approx(mu.mean(), rel=1e-5)
    weights = np.linspace(0.5, 2.0, len(old)).astype("float32")
    weighted = MemoryRetentiveLoss(similarity, temperature=temperature)(old, new, sample_weight=weights)
    assert float(weighted) == pytest.approx((weights * mu).sum(), rel=1e-5)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_falls_as_new_features_move_toward_old(similarity):
    loss = MemoryRetentiveLoss(similarity)
    for seed in range(5):
        old, new = _features(seed, batch=16, dim=8)
        values = [float(loss(old, old + t * (new - old))) for t in np.linspace(1.0, 0.0, 9)]
        assert np.all(np.diff(values) < 0), values


def test_paper_temperature_prefers_collapse_to_the_mean():
    # The property documented in the docstring: with T = 1 the attention is nearly uniform and
    # collapsing every new feature onto the old mean scores lower than equal features; T = 0.05
    # (close to the paper's "closest neighbour" reading) restores new = old as the better state.
    old, _ = _features(3, batch=32, dim=16)
    collapsed = np.tile(old.mean(axis=0, keepdims=True), (len(old), 1))
    paper, sharp = MemoryRetentiveLoss(), MemoryRetentiveLoss(temperature=0.05)
    assert float(paper(old, collapsed)) < float(paper(old, old))
    assert float(sharp(old, old)) < float(sharp(old, collapsed))


def test_gradients_flow_to_new_features_only_and_are_finite_at_equality():
    old, new = _features(1)
    old_t, new_t = tf.constant(old), tf.constant(new)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([old_t, new_t])
        value = MemoryRetentiveLoss()(old_t, new_t)
        at_equality = MemoryRetentiveLoss()(old_t, old_t + 0.0 * new_t)
    assert tape.gradient(value, old_t) is None
    assert np.all(np.isfinite(tape.gradient(at_equality, new_t).numpy()))
    assert np.abs(tape.gradient(value, new_t).numpy()).sum() > 0


def test_normalize_is_eq_7_on_unit_features_and_scale_free():
    old, new = _features(1)
    unit = lambda z: z / np.linalg.norm(z, axis=-1, keepdims=True)
    loss = MemoryRetentiveLoss(temperature=0.1, normalize=True, reduction=None)
    np.testing.assert_allclose(loss(old, new).numpy(), _reference(unit(old), unit(new), temperature=0.1), rtol=1e-5)
    np.testing.assert_allclose(loss(40.0 * old, 40.0 * new).numpy(), loss(old, new).numpy(), rtol=1e-5)
    raw = MemoryRetentiveLoss(temperature=0.1, reduction=None)
    assert float(np.max(np.abs(raw(40.0 * old, 40.0 * new).numpy() - 40.0 * raw(old, new).numpy()))) < 1e-3
    assert float(np.max(loss(40.0 * old, 40.0 * new).numpy())) <= 2.0  # unit vectors are at most 2 apart


def test_bad_input():
    with pytest.raises(TypeError, match="normalize"):
        MemoryRetentiveLoss(normalize="yes")
    with pytest.raises(ValueError, match="similarity"):
        MemoryRetentiveLoss("euclidean")
    with pytest.raises(ValueError, match="temperature"):
        MemoryRetentiveLoss(temperature=0.0)
    with pytest.raises(ValueError, match="y_true"):
        MemoryRetentiveLoss()(np.ones((4, 3)), np.ones((4, 2)))


def test_serialization():
    revived = helpers.assert_config_round_trip(
        MemoryRetentiveLoss("dot", temperature=0.5, normalize=True, reduction="sum_over_batch_size", name="mr"))
    assert revived.similarity == "dot" and revived.temperature == 0.5 and revived.name == "mr"
    assert revived.normalize is True


# Training a feature extractor towards fixed old features: 32 examples, global batches of 16.
X = np.random.default_rng(5).normal(size=(32, 4)).astype("float32")
OLD = np.maximum(np.random.default_rng(6).normal(size=(32, 3)), 0.0).astype("float32")
INITIAL = [np.random.default_rng(7).normal(scale=0.5, size=(4, 3)).astype("float32"), np.zeros(3, "float32")]


def _fit(reduction, jit_compile=False):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.set_weights(INITIAL)
    model.compile(keras.optimizers.SGD(0.05), loss=MemoryRetentiveLoss(reduction=reduction), jit_compile=jit_compile)
    model.fit(X, OLD, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("reduction", ["sum", "sum_over_batch_size"])
@pytest.mark.slow
def test_mirrored_strategy_and_jit_equal_one_device(reduction):
    expected = _fit(reduction)
    assert not np.allclose(expected[0], INITIAL[0])
    for name, got in (("mirrored", helpers.run_mirrored(lambda strategy: _fit(reduction))),
                      ("jit", _fit(reduction, jit_compile=True))):
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=name)
