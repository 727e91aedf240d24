import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail import data
from keras_longtail import metrics
from keras_longtail import models
from keras_longtail.callbacks import BackupAndRestore
from keras_longtail.layers import CosineClassifier
from keras_longtail.dual_phase import DualPhaseTraining
from tests import helpers


def _cross_entropy():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def test_phase_one_model_and_data():
    keras.utils.set_random_seed(0)
    counts = [5, 40, 30, 25]  # the head is not class 0
    dual = DualPhaseTraining(models.mlp(4, (2,)), counts, threshold=2, memory_size=3)
    assert dual.split.phase_one == [1, 2] and dual.phase_one_class_counts == [40, 30]
    assert dual.retentive_weight == pytest.approx(np.sqrt(4 / 2))
    assert isinstance(dual.phase_one_model.get_layer("classifier"), CosineClassifier)
    assert dual.phase_one_model.output_shape == (None, 2)
    labels = np.repeat(np.arange(4), counts)
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((len(labels), 2), "float32"), labels.astype("int32")))
    phase_one = [int(y) for _, y in dual.phase_one_data(dataset)]
    assert phase_one == [0] * 40 + [1] * 30


def test_balanced_memory_size_is_the_mean_phase_two_count():
    # phase II = classes 0 and 3 (5 and 24 examples): 14.5 rounded up, 15 exemplars per phase-I class
    dual = DualPhaseTraining(models.mlp(4, (2,)), [5, 40, 30, 24], threshold=2, memory_size="balanced")
    assert sorted(dual.split.phase_two) == [0, 3] and dual.memory_size == 15
    assert dual.phase_two_size() == 5 + 24 + 2 * 15
    # CIFAR-10-LT IF 100: the two phase-II classes have 83 and 50 training images
    counts = data.imbalance_profile(10, 5000, 100)
    dual = DualPhaseTraining(models.mlp(4, (2,)), counts, memory_size="balanced")
    assert [counts[k] for k in dual.split.phase_two] == [83, 50] and dual.memory_size == 67
    with pytest.raises(ValueError, match="memory_size"):
        DualPhaseTraining(models.mlp(4, (2,)), [5, 40, 30, 24], threshold=2, memory_size="half")
    with pytest.raises(TypeError, match="memory_size"):
        DualPhaseTraining(models.mlp(4, (2,)), [5, 40, 30, 24], threshold=2, memory_size=2.5)


def test_dense_classifier_is_truncated_to_the_phase_one_columns():
    keras.utils.set_random_seed(0)
    network = models.mlp(4, (2,))
    dual = DualPhaseTraining(network, [5, 40, 30, 25], threshold=2, cosine_classifier=False, margin=None)
    kernel = network.get_layer("classifier").kernel.numpy()
    np.testing.assert_array_equal(dual.phase_one_model.get_layer("classifier").kernel.numpy(), kernel[:, [1, 2]])


def _toy(seed=0):
    """4 classes of 2-D blobs, counts 40/30/12/6, as (x, y) arrays and an unbatched dataset."""
    rng = np.random.default_rng(seed)
    counts = [40, 30, 12, 6]
    labels = np.repeat(np.arange(4), counts).astype("int32")
    centres = np.array([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])
    x = (centres[labels] + rng.normal(scale=0.5, size=(len(labels), 2))).astype("float32")
    return counts, x, labels, tf.data.Dataset.from_tensor_slices((x, labels))


def test_memory_bank_and_phase_two_data():
    keras.utils.set_random_seed(0)
    counts, x, labels, dataset = _toy()
    dual = DualPhaseTraining(models.mlp(4, (2,), hidden_units=(8,)), counts, threshold=2, memory_size=5)
    with pytest.raises(ValueError, match="build_memory_bank"):
        dual.phase_two_data(dataset)
    bank = dual.build_memory_bank(dataset)
    assert sorted(bank.indices_) == [0, 1] and all(len(rows) == 5 for rows in bank.indices_.values())
    assert all(labels[i] == k for k, rows in bank.indices_.items() for i in rows)
    kept = [(tuple(np.round(xi, 5)), int(yi)) for xi, yi in dual.phase_two_data(dataset)]
    expected = [(tuple(np.round(x[i], 5)), int(labels[i])) for i in range(len(labels))
                if labels[i] >= 2 or i in set(bank.exemplar_indices().tolist())]
    assert kept == expected and len(kept) == dual.phase_two_size() == 12 + 6 + 10


def _phase_two_weights(jit_compile=False, reduction="sum_over_batch_size", temperature=0.01, initial_scale=None):
    keras.utils.set_random_seed(3)
    counts, x, labels, _ = _toy()
    network = models.mlp(4, (2,), hidden_units=(8,))
    dual = DualPhaseTraining(network, counts, threshold=2, memory_size=5, retentive_reduction=reduction,
                             retentive_temperature=temperature)
    model = dual.build_phase_two_model()
    # Move the new backbone off the old one: at new = old every distance is 0, where the Euclidean norm has
    # no gradient and float rounding alone would pick its direction (different on one device and two).
    hidden = dual.model.get_layer("hidden1")
    hidden.kernel.assign(hidden.kernel.numpy() + 0.3)
    optimizer = keras.optimizers.SGD(0.1)
    if initial_scale is not None:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=initial_scale)
    model.compile(optimizer, _cross_entropy(), jit_compile=jit_compile)
    model.fit(x[:64], labels[:64], batch_size=16, epochs=1, shuffle=False, verbose=0)
    if initial_scale is not None:
        assert int(model.optimizer.iterations) == 4, "the loss scaler skipped a step"
    return dual.model.get_weights()


@pytest.mark.parametrize("reduction, temperature", [("sum_over_batch_size", 0.01), ("sum", 1.0)])
@pytest.mark.slow
def test_phase_two_step_under_mirrored_strategy_and_jit_equals_one_device(reduction, temperature):
    expected = _phase_two_weights(reduction=reduction, temperature=temperature)
    options = {"reduction": reduction, "temperature": temperature}
    for name, got in (("mirrored", helpers.run_mirrored(lambda strategy: _phase_two_weights(**options))),
                      ("jit", _phase_two_weights(jit_compile=True, **options))):
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=name)


def test_phase_two_loss_is_equation_9():
    keras.utils.set_random_seed(4)
    counts, x, labels, _ = _toy()
    dual = DualPhaseTraining(models.mlp(4, (2,), hidden_units=(8,)), counts, threshold=2, retentive_weight=0.7)
    model = dual.build_phase_two_model()
    model.compile("sgd", _cross_entropy())
    batch_x, batch_y = x[:16], labels[:16]
    # Perturb the new backbone so the old and new features differ.
    hidden = dual.model.get_layer("hidden1")
    hidden.kernel.assign(hidden.kernel.numpy() + 0.3)
    logits = model(batch_x, training=True)
    total = float(model.compute_loss(batch_x, batch_y, logits, training=True))
    features = keras.Model(dual.model.input, dual.model.get_layer("features").output)
    old_features = model.old_features(batch_x, training=False)
    expected = (float(_cross_entropy()(batch_y, logits)) + float(dual.intra_loss(batch_y, logits))
                + 0.7 * float(dual.retentive_loss(old_features, features(batch_x))))
    assert total == pytest.approx(expected, rel=1e-5)
    assert float(dual.retentive_loss(old_features, features(batch_x))) > 0


def test_bad_input():
    network = models.mlp(4, (2,))
    with pytest.raises(ValueError, match="retentive_weight"):
        DualPhaseTraining(network, [40, 30, 12, 6], retentive_weight=-1.0)
    with pytest.raises(ValueError, match="threshold"):
        DualPhaseTraining(network, [40, 30, 12, 6], threshold=4)
    with pytest.raises(ValueError, match="margin"):
        DualPhaseTraining(network, [40, 30, 12, 6], cosine_classifier=False)
    with pytest.raises(ValueError, match="phase_two_data"):
        DualPhaseTraining(network, [40, 30, 12, 6], phase_two_data="tail")
    with pytest.raises(ValueError, match="feature_layer"):
        DualPhaseTraining(network, [40, 30, 12, 6], feature_layer="pool")
    # at construction, before phase I trains: the bank needs memory_size examples of every phase-I class
    counts = _toy()[0]
    with pytest.raises(ValueError, match=r"Expected `memory_size` <= 12, .* class \(2\)\. Received: memory_size=13"):
        DualPhaseTraining(models.mlp(4, (2,)), counts, threshold=3, memory_size=13)
    DualPhaseTraining(models.mlp(4, (2,)), counts, threshold=3, memory_size=12)


@pytest.mark.slow
def test_end_to_end_on_digits_lt(tmp_path):
    keras.utils.set_random_seed(0)
    loaded = data.load_digits_lt()
    dual = DualPhaseTraining(models.mlp(10, (8, 8, 1), hidden_units=(32,)), loaded.class_counts, memory_size=5)
    assert dual.split.phase_one == [0, 1, 2, 3, 4, 5]  # Many + Medium of digits-LT IF 20
    phase_one = data.progressively_balanced_sampler(
        dual.phase_one_data(loaded.train), dual.phase_one_class_counts, epochs=6, seed=0).batch(32)
    dual.phase_one_model.compile(keras.optimizers.Adam(0.01), _cross_entropy())
    steps = sum(dual.phase_one_class_counts) // 32
    dual.phase_one_model.fit(phase_one, epochs=6, steps_per_epoch=steps, verbose=0)
    dual.build_memory_bank(loaded.train)
    model = dual.build_phase_two_model()
    trained_head = dual.model.get_layer("classifier").kernel.numpy()[:, :6].copy()
    model.compile(keras.optimizers.Adam(0.01), _cross_entropy())
    history = model.fit(dual.phase_two_data(loaded.train).shuffle(100, seed=0).batch(32), epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert not np.allclose(dual.model.get_layer("classifier").kernel.numpy()[:, :6], trained_head)
    shot = metrics.ShotAccuracy(loaded.class_counts)
    for images, labels in loaded.test.batch(512):
        shot.update_state(labels, dual.model(images, training=False))
    accuracy = {key: float(value) for key, value in shot.result().items()}
    assert accuracy["acc_overall"] > 0.4 and accuracy["acc_few"] > 0.2  # chance is 0.1
    images = next(iter(loaded.test.batch(8)))[0]
    helpers.assert_keras_save_load(dual.model, images, tmp_path, atol=1e-5)


# ---------------------------------------------------------------------------------------------- restarts
def _dual_phase_script(directory, kill_at=None):
    """A user's dual-phase script with restarts; a restarted process runs it again from the top.

    `kill_at=(phase, epoch)` kills it in that epoch of phase 1 or 2. Returns the DualPhaseTraining, the
    phase-II model and whether phase I was restored.
    """
    keras.utils.set_random_seed(0)
    counts, _, _, dataset = _toy()
    dual = DualPhaseTraining(models.mlp(4, (2,), hidden_units=(8,)), counts, threshold=2, memory_size=5)

    def callbacks(phase):
        kill = [helpers.Interrupt(epoch=kill_at[1], batch=0)] if kill_at and kill_at[0] == phase else []
        return [BackupAndRestore(str(directory / f"backup_{phase}")), *kill]

    restored = dual.load_phase_one(str(directory / "phase_one"))
    if not restored:
        dual.phase_one_model.compile(keras.optimizers.SGD(0.1, momentum=0.9), _cross_entropy())
        dual.phase_one_model.fit(dual.phase_one_data(dataset).batch(16), epochs=3, verbose=0, callbacks=callbacks(1))
        dual.build_memory_bank(dataset)
        dual.save_phase_one(str(directory / "phase_one"))
    keras.utils.set_random_seed(1)
    model = dual.build_phase_two_model()
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), _cross_entropy())
    model.fit(dual.phase_two_data(dataset).batch(8), epochs=3, verbose=0, callbacks=callbacks(2))
    return dual, model, restored


def _assert_same_run(reference, resumed):
    (dual, model, _), (resumed_dual, resumed_model, _) = reference, resumed
    assert resumed_dual.memory_bank.indices_ == dual.memory_bank.indices_
    for k, features in dual.memory_bank.features_.items():
        np.testing.assert_array_equal(resumed_dual.memory_bank.features_[k], features)
    for want, have in zip(model.old_features.get_weights(), resumed_model.old_features.get_weights()):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-7)  # the frozen phase-I features
    for want, have in zip(dual.model.get_weights(), resumed_dual.model.get_weights()):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-7)


# In phase I; in phase II before its first checkpoint (phase II restarts from `load_phase_one` alone); after it.
@pytest.mark.parametrize("phase,epoch", [(1, 1), (2, 0), (2, 1)])
@pytest.mark.slow
def test_a_run_killed_in_either_phase_resumes_as_if_uninterrupted(tmp_path, phase, epoch):
    reference = _dual_phase_script(tmp_path / "reference")
    with pytest.raises(RuntimeError, match="interrupted"):
        _dual_phase_script(tmp_path / "run", kill_at=(phase, epoch))
    resumed = _dual_phase_script(tmp_path / "run")
    assert resumed[2] is (phase == 2)  # phase I is skipped only once it has completed
    _assert_same_run(reference, resumed)


def test_phase_one_state_is_what_a_restart_would_lose(tmp_path):
    # Without `load_phase_one`, a restarted process has an untrained backbone: its memory bank is another.
    dual, _, _ = _dual_phase_script(tmp_path / "reference")
    keras.utils.set_random_seed(0)
    counts, _, _, dataset = _toy()
    fresh = DualPhaseTraining(models.mlp(4, (2,), hidden_units=(8,)), counts, threshold=2, memory_size=5)
    assert fresh.build_memory_bank(dataset).indices_ != dual.memory_bank.indices_


def test_phase_one_state_bad_use(tmp_path):
    keras.utils.set_random_seed(0)
    counts, _, _, dataset = _toy()

    def fresh(**kwargs):
        return DualPhaseTraining(models.mlp(4, (2,), hidden_units=(8,)), counts, **{"threshold": 2, **kwargs})

    dual = fresh()
    assert dual.load_phase_one(str(tmp_path / "nothing")) is False and dual.memory_bank is None
    with pytest.raises(ValueError, match="build_memory_bank"):
        dual.save_phase_one(str(tmp_path / "state"))
    dual.build_memory_bank(dataset)
    dual.save_phase_one(str(tmp_path / "state"))
    with pytest.raises(ValueError, match="directory"):
        fresh(threshold=3).load_phase_one(str(tmp_path / "state"))
    with pytest.raises(ValueError, match="memory_size"):
        fresh(memory_size=3).load_phase_one(str(tmp_path / "state"))
    dual.build_phase_two_model()
    with pytest.raises(ValueError, match="build_phase_two_model"):
        dual.load_phase_one(str(tmp_path / "state"))
    with pytest.raises(ValueError, match="build_phase_two_model"):
        dual.save_phase_one(str(tmp_path / "state"))


def test_phase_one_weights_alone_load_under_another_memory_size(tmp_path):
    keras.utils.set_random_seed(0)
    counts, _, _, dataset = _toy()
    dual = DualPhaseTraining(models.mlp(4, (2,), hidden_units=(8,)), counts, threshold=2, memory_size=10)
    dual.build_memory_bank(dataset)
    dual.save_phase_one(str(tmp_path / "state"))

    keras.utils.set_random_seed(1)  # other initial weights: the load must replace them
    other = DualPhaseTraining(models.mlp(4, (2,), hidden_units=(8,)), counts, threshold=2, memory_size=3)
    assert other.load_phase_one(str(tmp_path / "state"), memory_bank=False) is True
    assert other.memory_bank is None  # the saved bank (memory_size 10) is not this run's
    for expected, got in zip(dual.phase_one_model.get_weights(), other.phase_one_model.get_weights()):
        np.testing.assert_array_equal(expected, got)
    other.build_memory_bank(dataset)
    assert other.phase_two_size() == dual.phase_two_size() - (10 - 3) * 2


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_phase_two_batch_norm(mode):
    keras.utils.set_random_seed(5)
    counts, x, labels, _ = _toy()
    inputs = keras.Input((2,))
    hidden = keras.layers.BatchNormalization(name="bn")(keras.layers.Dense(8, activation="relu")(inputs))
    features = keras.layers.Dense(8, activation="relu", name="features")(hidden)
    network = keras.Model(inputs, keras.layers.Dense(4, name="classifier")(features))
    dual = DualPhaseTraining(network, counts, threshold=2, memory_size=5, phase_two_batch_norm=mode)
    model = dual.build_phase_two_model()
    bn = dual.model.get_layer("bn")
    before = [v.numpy().copy() for v in bn.weights]
    model.compile(keras.optimizers.SGD(0.1), _cross_entropy())
    model.fit(x[:32], labels[:32], batch_size=16, epochs=1, shuffle=False, verbose=0)
    changed = [not np.allclose(b, v.numpy()) for b, v in zip(before, bn.weights)]  # gamma, beta, mean, variance
    assert changed == ([False] * 4 if mode == "inference" else [True] * 4)
    assert bn.trainable == (mode == "train")


def test_phase_two_batch_norm_bad_input():
    with pytest.raises(ValueError, match="phase_two_batch_norm"):
        DualPhaseTraining(models.mlp(4, (2,)), [40, 30, 12, 6], phase_two_batch_norm="frozen")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_phase_two_step_in_mixed_precision_stays_close_to_float32(policy):
    # Issue 19.2: the phase-II step (cosine classifier, intra-class margin and memory-retentive losses) with
    # 16-bit compute (and Keras' LossScaleOptimizer for float16); the global policy is always restored.
    expected = _phase_two_weights()
    keras.config.set_dtype_policy(policy)
    try:
        # Keras' default loss scale 2^15 overflows the first float16 step here (the loss scaler skips it); at
        # 2^8 no step is skipped and the runs compare step for step (the contract suite runs the default).
        got = _phase_two_weights(initial_scale=2.0 ** 8 if policy == "mixed_float16" else None)
    finally:
        keras.config.set_dtype_policy("float32")
    tolerance = {"mixed_bfloat16": 1e-2, "mixed_float16": 3e-3}[policy]  # measured 3.4e-3 and 7.4e-4
    for want, have in zip(expected, got):
        assert have.dtype == np.float32
        np.testing.assert_allclose(have, want, rtol=0, atol=tolerance)


def test_phase_two_does_not_depend_on_how_phase_one_was_compiled():
    # Issue 21.14: phase I compiled with a schedule Keras cannot deserialize (not registered) must not stop phase II.
    class Unregistered(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1

        def get_config(self):
            return {}

    keras.utils.set_random_seed(0)
    counts, x, labels, dataset = _toy()
    dual = DualPhaseTraining(models.mlp(4, (2,), hidden_units=(8,)), counts, threshold=2, memory_size=5)
    dual.phase_one_model.compile(keras.optimizers.SGD(Unregistered()), loss=_cross_entropy())
    dual.phase_one_model.fit(*map(np.asarray, (x[labels < 2], labels[labels < 2])), epochs=1, verbose=0)
    dual.build_memory_bank(dataset)
    model = dual.build_phase_two_model()
    old = model.get_layer("phase_one_features")
    np.testing.assert_array_equal(old(x[:4]), keras.Model(dual.phase_one_model.input, dual.phase_one_model.get_layer(
        dual.feature_layer).output)(x[:4]))
