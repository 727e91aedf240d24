import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.ops import min_norm_weights


def _objective(gradients, alpha):
    direction = np.asarray(alpha, np.float64) @ np.asarray(gradients, np.float64)
    return float(direction @ direction)


def _problem(num, dim=200, seed=0, shared=1.0):
    rng = np.random.default_rng(seed)
    # A shared component keeps the optimum away from 0 (gradients of one network agree partly).
    return (shared * rng.normal(size=(1, dim)) + rng.normal(size=(num, dim)) * rng.uniform(0.2, 3.0, (num, 1)))


@pytest.mark.parametrize("num", [2, 4, 16, 64])
@pytest.mark.parametrize("solver", ["active_set", "pgd", "frank_wolfe"])
def test_matches_cvxopt_on_random_problems(num, solver):
    for seed in range(3):
        gradients = _problem(num, seed=seed)
        exact = min_norm_weights(gradients, solver="cvxopt")
        alpha = min_norm_weights(gradients, solver=solver, max_iterations=5000, tolerance=1e-9).numpy()
        assert alpha.shape == (num,) and np.all(alpha >= 0) and abs(alpha.sum() - 1) < 1e-9
        best = _objective(gradients, exact)
        assert best > 1e-3
        assert _objective(gradients, alpha) == pytest.approx(best, rel=1e-5)


@pytest.mark.parametrize("num", [4, 16])
def test_default_settings_reach_1e5_relative(num):
    gradients = _problem(num, seed=7).astype(np.float32)
    alpha = min_norm_weights(gradients).numpy()
    best = _objective(gradients, min_norm_weights(gradients, solver="cvxopt"))
    assert _objective(gradients, alpha) == pytest.approx(best, rel=1e-5)


def test_cvxopt_is_optimal_by_kkt():
    gradients = _problem(6, seed=3)
    alpha = min_norm_weights(gradients, solver="cvxopt")
    gradient = 2 * gradients @ (gradients.T @ alpha)
    value = alpha @ gradient
    support = alpha > 1e-6
    np.testing.assert_allclose(gradient[support], value, rtol=1e-5)  # equal on the support
    assert np.all(gradient >= value - 1e-6 * abs(value))  # larger off the support


def test_two_gradients_closed_form():
    rng = np.random.default_rng(1)
    for _ in range(5):
        g1, g2 = rng.normal(size=(2, 30))
        gamma = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0, 1)
        for solver in ("active_set", "pgd", "frank_wolfe"):
            alpha = min_norm_weights(np.stack([g1, g2]), solver=solver).numpy()
            np.testing.assert_allclose(alpha, [gamma, 1 - gamma], atol=1e-12)
    # one gradient inside the other's half-space: the shorter one alone
    alpha = min_norm_weights(np.array([[1.0, 0.0], [3.0, 0.1]])).numpy()
    np.testing.assert_allclose(alpha, [1.0, 0.0])


@pytest.mark.parametrize("solver", ["active_set", "pgd", "frank_wolfe", "cvxopt"])
def test_collinear_and_zero_gradients_are_finite(solver):
    direction = np.array([1.0, -2.0, 0.5])
    cases = {
        "collinear": np.stack([direction, 2 * direction, 5 * direction, 0.5 * direction]),
        "opposite": np.stack([direction, -direction, 2 * direction, -3 * direction]),
        "zero": np.zeros((4, 3)),
        "one zero": np.stack([direction, np.zeros(3), -direction, 2 * direction]),
    }
    for name, gradients in cases.items():
        for normalization in ("none", "l2", "loss", "loss+"):
            alpha = np.asarray(min_norm_weights(gradients, solver=solver, normalization=normalization,
                                                losses=[1.0, 2.0, 0.0, 3.0]))
            assert np.all(np.isfinite(alpha)), (name, normalization)
            assert alpha.sum() == pytest.approx(1.0) and np.all(alpha >= -1e-12)
    # collinear, same direction: all weight on the shortest
    alpha = np.asarray(min_norm_weights(cases["collinear"], solver=solver))
    assert _objective(cases["collinear"], alpha) == pytest.approx(0.25 * direction @ direction, rel=1e-5)
    # opposite directions or a zero gradient: the origin is reachable
    assert _objective(cases["opposite"], np.asarray(min_norm_weights(cases["opposite"], solver=solver))) < 1e-8
    assert _objective(cases["one zero"], np.asarray(min_norm_weights(cases["one zero"], solver=solver))) < 1e-8


@pytest.mark.parametrize("solver", ["active_set", "pgd", "frank_wolfe", "cvxopt"])
def test_mask_gives_absent_groups_zero(solver):
    gradients = _problem(5, seed=2)
    mask = [True, False, True, True, False]
    alpha = np.asarray(min_norm_weights(gradients, solver=solver, mask=mask, max_iterations=2000, tolerance=1e-10))
    assert alpha[1] == 0 and alpha[4] == 0
    sub = np.asarray(min_norm_weights(gradients[[0, 2, 3]], solver="cvxopt"))
    np.testing.assert_allclose(alpha[[0, 2, 3]], sub, atol=2e-3)
    assert _objective(gradients, alpha) == pytest.approx(_objective(gradients[[0, 2, 3]], sub), rel=1e-5)
    one = np.asarray(min_norm_weights(gradients, solver=solver, mask=[False, False, True, False, False]))
    np.testing.assert_allclose(one, [0, 0, 1, 0, 0])
    none = np.asarray(min_norm_weights(gradients, solver=solver, mask=[False] * 5))
    np.testing.assert_allclose(none, np.zeros(5))
    two = np.asarray(min_norm_weights(gradients[:2], solver=solver, mask=[False, True]))
    np.testing.assert_allclose(two, [0, 1])


def test_normalizations_match_scaled_problems():
    gradients = _problem(4, seed=4)
    norms = np.linalg.norm(gradients, axis=1)
    losses = np.array([0.5, 1.0, 2.0, 4.0])
    for normalization, scale in (("l2", norms), ("loss", losses), ("loss+", losses * norms)):
        alpha = np.asarray(min_norm_weights(gradients, normalization=normalization, losses=losses,
                                            max_iterations=3000, tolerance=1e-10))
        expected = min_norm_weights(gradients / scale[:, None], solver="cvxopt")
        np.testing.assert_allclose(alpha, expected, atol=1e-4)


def test_list_of_variable_gradients_equals_matrix():
    rng = np.random.default_rng(5)
    kernels, biases = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 2))
    as_lists = [[tf.constant(k), tf.constant(b)] for k, b in zip(kernels, biases)]
    as_matrix = np.concatenate([kernels.reshape(3, -1), biases], axis=1)
    np.testing.assert_allclose(min_norm_weights(as_lists).numpy(), min_norm_weights(as_matrix).numpy(), atol=1e-12)
    with_none = [[tf.constant(k), None] for k in kernels]
    np.testing.assert_allclose(min_norm_weights(with_none).numpy(),
                               min_norm_weights(kernels.reshape(3, -1)).numpy(), atol=1e-12)


@pytest.mark.parametrize("solver", ["active_set", "pgd", "frank_wolfe"])
@pytest.mark.slow
def test_runs_in_tf_function_and_under_jit(solver):
    gradients = _problem(6, seed=6).astype(np.float32)
    eager = min_norm_weights(gradients, solver=solver, mask=[True] * 5 + [False]).numpy()

    @tf.function(jit_compile=True)
    def compiled(g, mask):
        return min_norm_weights(g, solver=solver, normalization="loss+", losses=tf.ones([6]), mask=mask)

    @tf.function
    def graph(g, mask):
        return min_norm_weights(g, solver=solver, mask=mask)

    mask = tf.constant([True] * 5 + [False])
    np.testing.assert_allclose(graph(tf.constant(gradients), mask).numpy(), eager, atol=1e-6)
    jit = compiled(tf.constant(gradients), mask).numpy()
    assert np.all(np.isfinite(jit)) and jit[5] == 0 and jit.sum() == pytest.approx(1.0, abs=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="solver"):
        min_norm_weights(np.eye(3), solver="qp")
    with pytest.raises(ValueError, match="normalization"):
        min_norm_weights(np.eye(3), normalization="l1")
    with pytest.raises(ValueError, match="losses"):
        min_norm_weights(np.eye(3), normalization="loss")
    with pytest.raises(ValueError, match="losses"):
        min_norm_weights(np.eye(3), normalization="loss", losses=[1.0, 2.0])
    with pytest.raises(ValueError, match="mask"):
        min_norm_weights(np.eye(3), mask=[True, False])
    with pytest.raises(ValueError, match="same shapes"):
        min_norm_weights([np.ones(3), np.ones(4)])
    with pytest.raises(ValueError, match="same structure"):
        min_norm_weights([[np.ones(3), np.ones(2)], [np.ones(3)]])
    with pytest.raises(ValueError, match="gradients"):
        min_norm_weights(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="gradients"):
        min_norm_weights([])
    with pytest.raises(ValueError, match="max_iterations"):
        min_norm_weights(np.eye(3), max_iterations=0)
    with pytest.raises(ValueError, match="tolerance"):
        min_norm_weights(np.eye(3), tolerance=-1.0)


@pytest.mark.parametrize("num", [2, 4, 16])
@pytest.mark.parametrize("solver", ["active_set", "pgd", "frank_wolfe"])
@pytest.mark.slow
def test_float32_solve_used_on_tpu_matches_float64(monkeypatch, num, solver):
    # TPUs have no float64: under TPUStrategy the solver runs in float32 (solver_dtype); same optimum here.
    from keras_longtail.gbg import _min_norm

    solve = tf.function(lambda g: min_norm_weights(g, solver=solver, max_iterations=2000, tolerance=1e-6),
                        jit_compile=True)  # traced once, in float32
    for seed in range(3):
        gradients = _problem(num, seed=seed)
        exact = min_norm_weights(gradients, solver="cvxopt")
        monkeypatch.setattr(_min_norm, "solver_dtype", lambda: tf.float32)
        alpha = solve(tf.constant(gradients, tf.float32))
        monkeypatch.undo()
        assert alpha.dtype == tf.float32
        alpha = alpha.numpy()
        assert np.all(alpha >= 0) and abs(alpha.sum() - 1) < 1e-5
        assert _objective(gradients, alpha) == pytest.approx(_objective(gradients, exact), rel=1e-4)


def test_solver_dtype_is_float64_off_tpu():
    from keras_longtail.gbg import _min_norm

    assert _min_norm.solver_dtype() == tf.float64


def _ill_scaled(seed):
    # issue 17.5 / 21.8: gradient norms over two orders of magnitude (row scales 0.1-10)
    rng = np.random.default_rng(seed)
    num = int(rng.choice([6, 12, 16]))
    return rng.normal(size=(num, 40)) * rng.uniform(0.1, 10, (num, 1))


def _excess(gradients, alpha, exact):
    """(f(alpha) - f*) relative to f*, or to 1e-9 max_i ||g_i||^2 when the optimum is (near) 0."""
    best = _objective(gradients, exact)
    floor = 1e-9 * float(np.max(np.sum(np.asarray(gradients) ** 2, axis=1)))
    return (_objective(gradients, alpha) - best) / max(best, floor)


def test_default_solver_reaches_optimum_on_reported_ill_scaled_problem():
    # The reproducer of issue 17.5: seed 93 gives G = 16; the former default ("pgd", FISTA) stopped at
    # 250 iterations 6.5 % above the optimum with weights off by 0.12.
    gradients = _ill_scaled(93)
    assert gradients.shape[0] == 16
    exact = min_norm_weights(gradients, solver="cvxopt")
    alpha, gap = min_norm_weights(gradients, return_gap=True)
    alpha = alpha.numpy()
    assert float(gap) <= 1e-6
    assert _excess(gradients, alpha, exact) < 1e-6
    np.testing.assert_allclose(alpha, exact, atol=1e-4)
    # the gap certifies: it bounds the relative excess of FISTA's early stop, and says it did not converge
    pgd, pgd_gap = min_norm_weights(gradients, solver="pgd", return_gap=True)
    excess = _excess(gradients, pgd.numpy(), exact)
    assert excess > 1e-2  # the reported failure (6.5 %)
    assert float(pgd_gap) > 1e-6 and float(pgd_gap) >= excess / (1 + excess) - 1e-9


@pytest.mark.parametrize("shape", ["tall", "wide"])
def test_default_solver_matches_cvxopt_on_many_ill_scaled_problems(shape):
    # 'tall': D = 40 > G (a unique optimum); 'wide': D = 10 < G up to 64 (the optimum is often the origin:
    # the weights are not unique, the objective is).
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        num = int(rng.choice([3, 6, 12, 16, 32, 64]))
        dim = 40 if shape == "tall" else 10
        gradients = rng.normal(size=(num, dim)) * rng.uniform(0.1, 10, (num, 1))
        if seed % 3 == 0:
            gradients = gradients + 3.0 * rng.normal(size=(1, dim))  # a shared component
        exact = min_norm_weights(gradients, solver="cvxopt")
        alpha, gap = min_norm_weights(gradients, return_gap=True)
        alpha = alpha.numpy()
        assert np.all(alpha >= 0) and abs(alpha.sum() - 1) < 1e-9
        assert float(gap) <= 1e-6, (seed, num)
        assert _excess(gradients, alpha, exact) < 2e-6, (seed, num)
        if shape == "tall" and _objective(gradients, exact) > 1e-6:
            np.testing.assert_allclose(alpha, exact, atol=2e-3)


@pytest.mark.parametrize("solver", ["active_set", "pgd", "frank_wolfe", "cvxopt"])
def test_returned_gap_bounds_the_excess(solver):
    for seed in range(6):
        gradients = _ill_scaled(seed)
        exact = min_norm_weights(gradients, solver="cvxopt")
        for iterations in (1, 5, 250):
            kwargs = {} if solver == "cvxopt" else {"max_iterations": iterations}
            alpha, gap = min_norm_weights(gradients, solver=solver, return_gap=True, **kwargs)
            excess = _excess(gradients, np.asarray(alpha), exact)
            # gap >= (f - f*) / f  (= excess / (1 + excess))
            assert float(gap) >= excess / (1 + excess) - 1e-7, (seed, iterations)
            if float(gap) <= 1e-6:
                assert excess <= 2e-6


def test_gap_says_when_the_iterations_ran_out():
    gradients = _ill_scaled(93)
    _, gap = min_norm_weights(gradients, max_iterations=2, return_gap=True)
    assert float(gap) > 1e-6
    _, gap = min_norm_weights(gradients, return_gap=True)
    assert float(gap) <= 1e-6
    _, gap = min_norm_weights(gradients, mask=[False] * 16, return_gap=True)
    assert float(gap) == 0.0
    with pytest.raises(ValueError, match="return_gap"):
        min_norm_weights(gradients, return_gap="yes")


def test_gap_under_jit():
    gradients = tf.constant(_ill_scaled(93), tf.float32)

    @tf.function(jit_compile=True)
    def compiled(g):
        return min_norm_weights(g, return_gap=True)

    alpha, gap = compiled(gradients)
    exact = min_norm_weights(gradients.numpy().astype(np.float64), solver="cvxopt")
    assert gap.dtype == tf.float32 and float(gap) <= 1e-6
    np.testing.assert_allclose(alpha.numpy(), exact, atol=1e-4)


@pytest.mark.parametrize("solver", ["active_set", "pgd", "frank_wolfe"])
def test_non_finite_gradients_give_uniform_weights_and_a_nan_gap(solver):
    # A float16 step whose scaled gradients overflowed (LossScaleOptimizer skips it): no solve, no error.
    gradients = _problem(4, seed=1)
    gradients[2, 5] = np.inf
    alpha, gap = min_norm_weights(gradients, solver=solver, mask=[True, True, True, False], return_gap=True)
    np.testing.assert_allclose(alpha.numpy(), [1 / 3, 1 / 3, 1 / 3, 0.0])
    assert np.isnan(float(gap))
    gradients[2, 5] = np.nan
    alpha, gap = min_norm_weights(gradients, solver=solver, return_gap=True)
    np.testing.assert_allclose(alpha.numpy(), [0.25] * 4)
    assert np.isnan(float(gap))
