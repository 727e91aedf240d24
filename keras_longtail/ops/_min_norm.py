"""In-graph pieces of the min-norm solver, shared by `min_norm_weights` and the GBG train step.

Everything here works on the (G, G) Gram matrix M of the gradients, in TensorFlow ops
(float64 inside: G is small), so it runs inside a compiled and distributed train step.
Under `TPUStrategy` the solve runs in float32 instead (TPUs have no float64); the
constants below follow the dtype of M.
"""

import numpy as np

from keras_longtail import _backend
from keras_longtail import _distribute
from keras_longtail import _validation

SOLVERS = ("pgd", "frank_wolfe", "cvxopt")
NORMALIZATIONS = ("none", "l2", "loss", "loss+")


def solver_dtype():
    """float64, or float32 under `TPUStrategy` (TPUs have no float64); decided when tracing."""
    tf = _backend.import_tensorflow()
    on_tpu = isinstance(tf.distribute.get_strategy(), (tf.distribute.TPUStrategy,
                                                        tf.distribute.experimental.TPUStrategy))
    return tf.float32 if on_tpu else tf.float64


STEP_SOLVERS = ("pgd", "frank_wolfe")  # the in-graph ones, usable inside a train step


def check_step_settings(normalization, solver, max_iterations, tolerance, optional=False):
    """Validated (normalization, solver, max_iterations, tolerance) of a GBG step; `None` kept if `optional`."""
    checks = (("normalization", normalization, lambda n, v: _validation.check_choice(n, v, NORMALIZATIONS) or v),
              ("solver", solver, lambda n, v: _validation.check_choice(n, v, STEP_SOLVERS) or v),
              ("max_iterations", max_iterations, lambda n, v: _validation.check_int(n, v, minimum=1)),
              ("tolerance", tolerance, lambda n, v: _validation.check_float(n, v, minimum=0.0)))
    return tuple(None if value is None and optional else check(name, value) for name, value, check in checks)


def gram_matrix(gradients, dtype=None):
    """M_ij = <g_i, g_j> summed over the leaves of G same-structured gradients.

    `gradients` is a list of G gradients, each a tensor or a list of tensors
    (`None` leaves count as zeros). Returns a (G, G) tensor of `dtype`
    (default `solver_dtype()`).
    """
    tf = _backend.import_tensorflow()
    dtype = dtype or solver_dtype()
    num = len(gradients)
    leaves = [tf.nest.flatten(g) for g in gradients]
    total = tf.zeros([num, num], dtype)
    for position in range(len(leaves[0])):
        column = [leaf[position] for leaf in leaves]
        present = [c for c in column if c is not None]
        if not present:
            continue
        template = tf.reshape(present[0], [-1])
        stacked = tf.stack([tf.zeros_like(template) if c is None else tf.reshape(c, [-1]) for c in column])
        total += tf.cast(tf.matmul(stacked, stacked, transpose_b=True), dtype)
    return total


def normalizers(gram, losses, normalization):
    """Per-gradient divisors c_i: 1, ||g_i||, L_i or L_i ||g_i|| (zero or negative -> 1)."""
    tf = _backend.import_tensorflow()
    num = tf.shape(gram)[0]
    if normalization == "none":
        return tf.ones([num], gram.dtype)
    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
    if normalization == "l2":
        scale = norms
    else:
        losses = tf.cast(tf.reshape(losses, [-1]), gram.dtype)
        scale = losses if normalization == "loss" else losses * norms
    return tf.where(scale > 0.0, scale, tf.ones_like(scale))


def group_weights(gradients, losses=None, present=None, normalization="loss+", solver="pgd",
                  max_iterations=250, tolerance=1e-6):
    """GBG's alpha (Eq. 11) from each replica's share of G gradients and losses; float32 (G,).

    `gradients` is a list of G gradient lists (one per group), `losses` the G group
    losses (needed by `"loss"` and `"loss+"`), `present` G booleans (default: the
    groups whose gradient is not identically zero). Inside a `tf.distribute` replica
    context the gradients and losses are summed over replicas before the solve (Keras
    losses, and so their gradients, are already each replica's share of the global
    value), so every replica gets the same alpha. One group gives alpha = [1].
    `all_reduce_group_inputs` followed by `solve_group_weights` is the same in two parts.
    """
    tf = _backend.import_tensorflow()
    if len(gradients) == 1:
        return tf.ones([1], tf.float32)
    gradients, losses = all_reduce_group_inputs(gradients, losses, normalization)
    return solve_group_weights(gradients, losses, present, normalization, solver, max_iterations, tolerance)


def all_reduce_group_inputs(gradients, losses, normalization):
    """The global G gradients (and losses, when the normalizer reads them): a synchronization point.

    Kept apart from `solve_group_weights` because `tf.distribute` forbids an
    all-reduce inside `tf.cond`, while the solve may sit in one.
    """
    tf = _backend.import_tensorflow()
    gradients = [[None if leaf is None else _distribute.cross_replica_sum(tf.convert_to_tensor(leaf))
                  for leaf in tf.nest.flatten(g)] for g in gradients]
    if normalization in ("loss", "loss+"):
        losses = _distribute.cross_replica_sum(tf.cast(tf.reshape(tf.stack(losses), [-1]), tf.float32))
    return gradients, losses


def solve_group_weights(gradients, losses=None, present=None, normalization="loss+", solver="pgd",
                        max_iterations=250, tolerance=1e-6):
    """Alpha from global (already all-reduced) G gradients and losses; no synchronization."""
    tf = _backend.import_tensorflow()
    if len(gradients) == 1:
        return tf.ones([1], tf.float32)
    gram = gram_matrix(gradients)
    if present is None:
        present = tf.linalg.diag_part(gram) > 0.0
    scale = normalizers(gram, losses, normalization)
    gram = gram / (scale[:, None] * scale[None, :])
    return tf.cast(solve_gram(gram, present, solver, max_iterations, tolerance), tf.float32)


def combine(alpha, gradients):
    """d = sum_g alpha_g grad_g, leaf by leaf, for G same-structured gradient lists (None leaves as zeros)."""
    tf = _backend.import_tensorflow()
    leaves = [tf.nest.flatten(g) for g in gradients]
    combined = []
    for position in range(len(leaves[0])):
        terms = [tf.cast(alpha[g], leaf[position].dtype) * leaf[position]
                 for g, leaf in enumerate(leaves) if leaf[position] is not None]
        combined.append(tf.add_n(terms) if terms else None)
    return combined


def _project_to_simplex(values, mask):
    """Euclidean projection onto {x >= 0, sum x = 1, x_i = 0 where mask is False} (sort-based)."""
    tf = _backend.import_tensorflow()
    values = tf.where(mask, values, tf.constant(-1e30, values.dtype))
    ordered = tf.sort(values, direction="DESCENDING")
    cumulative = tf.cumsum(ordered)
    ranks = tf.cast(tf.range(1, tf.shape(values)[0] + 1), values.dtype)
    support = tf.logical_and(ordered - (cumulative - 1.0) / ranks > 0.0, ordered > -1e29)
    rho = tf.reduce_max(tf.where(support, tf.range(tf.shape(values)[0]), 0))
    theta = (tf.gather(cumulative, rho) - 1.0) / tf.cast(rho + 1, values.dtype)
    return tf.where(mask, tf.maximum(values - theta, 0.0), tf.zeros_like(values))


def _gap(gram, x, mask):
    """Objective f = x'Mx and the Frank-Wolfe gap x'Mx - min_{i present} (Mx)_i (>= f - f*)."""
    tf = _backend.import_tensorflow()
    mx = tf.linalg.matvec(gram, x)
    f = tf.reduce_sum(x * mx)
    best = tf.reduce_min(tf.where(mask, mx, tf.constant(gram.dtype.max, gram.dtype)))
    return f, f - best, mx


_COMPILED = {}


def solve_gram(gram, mask=None, solver="pgd", max_iterations=250, tolerance=1e-6):
    """Like `_solve_gram`; eager calls run a cached `tf.function` (a while_loop op by op is slow).

    Solves in `solver_dtype()`: float64, float32 under `TPUStrategy`.
    """
    tf = _backend.import_tensorflow()
    if not tf.executing_eagerly():
        return _solve_gram(gram, mask, solver, max_iterations, tolerance)
    gram = tf.convert_to_tensor(gram)
    num = gram.shape[0]
    mask = tf.ones([num], tf.bool) if mask is None else tf.cast(tf.reshape(mask, [-1]), tf.bool)
    key = (solver, int(max_iterations), float(tolerance))
    if key not in _COMPILED:
        _COMPILED[key] = tf.function(
            lambda g, m: _solve_gram(g, m, solver, max_iterations, tolerance))
    return _COMPILED[key](tf.cast(gram, solver_dtype()), mask)


def _solve_gram(gram, mask=None, solver="pgd", max_iterations=250, tolerance=1e-6):
    """alpha on the (masked) simplex minimizing alpha' M alpha; (G,) tensor of `solver_dtype()`.

    Absent groups (mask False) get 0; with no group present alpha is all zeros.
    """
    tf = _backend.import_tensorflow()
    gram = tf.cast(gram, solver_dtype())
    gram = 0.5 * (gram + tf.transpose(gram))
    num = tf.shape(gram)[0]
    if mask is None:
        mask = tf.ones([num], tf.bool)
    mask = tf.cast(tf.reshape(mask, [-1]), tf.bool)
    present = tf.reduce_sum(tf.cast(mask, gram.dtype))
    uniform = tf.cast(mask, gram.dtype) / tf.maximum(present, 1.0)
    static_num = gram.shape[0]
    if static_num == 1:
        return uniform
    if static_num == 2:
        return _two_gradients(gram, mask, uniform)
    scale = tf.reduce_max(tf.abs(tf.linalg.diag_part(gram)))
    if solver == "frank_wolfe":
        alpha = _frank_wolfe(gram, mask, uniform, scale, max_iterations, tolerance)
    else:
        alpha = _accelerated_projected_gradient(gram, mask, uniform, scale, max_iterations, tolerance)
    return tf.where(present > 0.0, alpha, tf.zeros_like(alpha))


def two_gradient_weight(m11, m12, m22):
    """gamma minimizing ||gamma g1 + (1 - gamma) g2||^2 over [0, 1] (0.5 when g1 = g2)."""
    tf = _backend.import_tensorflow()
    denominator = m11 + m22 - 2.0 * m12
    tiny = float(np.finfo(denominator.dtype.as_numpy_dtype).tiny)
    significant = denominator > 1e-30 * tf.maximum(m11 + m22, tiny)
    safe = tf.where(significant, denominator, tf.ones_like(denominator))
    gamma = tf.clip_by_value((m22 - m12) / safe, 0.0, 1.0)
    return tf.where(significant, gamma, 0.5 * tf.ones_like(gamma))


def _two_gradients(gram, mask, uniform):
    tf = _backend.import_tensorflow()
    gamma = two_gradient_weight(gram[0, 0], gram[0, 1], gram[1, 1])
    both = tf.stack([gamma, 1.0 - gamma])
    return tf.where(tf.reduce_all(mask), both, uniform)


def _frank_wolfe(gram, mask, start, scale, max_iterations, tolerance):
    """Frank-Wolfe with pairwise steps and exact line search.

    Each step moves weight from the worst vertex in the support (largest (Mx)_i) to
    the best present vertex (smallest (Mx)_i). Sener & Koltun's plain steps towards
    the best vertex zig-zag near the optimum's face (sublinear rate); pairwise steps
    converge linearly on the simplex (Lacoste-Julien & Jaggi, 2015).
    """
    tf = _backend.import_tensorflow()
    diagonal = tf.linalg.diag_part(gram)
    big = tf.constant(gram.dtype.max, gram.dtype)

    def cond(step, x, done):
        return tf.logical_and(step < max_iterations, tf.logical_not(done))

    def body(step, x, done):
        f, gap, mx = _gap(gram, x, mask)
        done = gap <= tolerance * tf.maximum(f, 1e-12 * scale)
        best = tf.argmin(tf.where(mask, mx, big), output_type=tf.int32)
        worst = tf.argmax(tf.where(x > 0.0, mx, -big), output_type=tf.int32)
        slope = tf.gather(mx, best) - tf.gather(mx, worst)  # d'Mx with d = e_best - e_worst
        curvature = (tf.gather(diagonal, best) + tf.gather(diagonal, worst)
                     - 2.0 * tf.gather(tf.gather(gram, best), worst))
        limit = tf.gather(x, worst)
        eta = tf.where(curvature > 0.0, -slope / tf.where(curvature > 0.0, curvature, 1.0), limit)
        eta = tf.clip_by_value(eta, 0.0, limit)
        size = tf.shape(x)[0]
        x_next = x + eta * (tf.one_hot(best, size, dtype=x.dtype) - tf.one_hot(worst, size, dtype=x.dtype))
        x_next = tf.maximum(x_next, 0.0)
        return step + 1, tf.where(done, x, x_next), done

    _, x, _ = tf.while_loop(cond, body, (tf.constant(0), start, tf.constant(False)))
    return x


def _accelerated_projected_gradient(gram, mask, start, scale, max_iterations, tolerance):
    """FISTA on 1/2 x'Mx over the simplex (step 1/L, L = Gershgorin bound on the largest
    eigenvalue), with function-value restart; stops on the Frank-Wolfe duality gap."""
    tf = _backend.import_tensorflow()
    lipschitz = tf.reduce_max(tf.reduce_sum(tf.abs(gram), axis=1))
    lipschitz = tf.where(lipschitz > 0.0, lipschitz, tf.ones_like(lipschitz))

    def cond(step, x, y, t, f_x, done):
        return tf.logical_and(step < max_iterations, tf.logical_not(done))

    def body(step, x, y, t, f_x, done):
        x_next = _project_to_simplex(y - tf.linalg.matvec(gram, y) / lipschitz, mask)
        f_next, gap, _ = _gap(gram, x_next, mask)
        t_next = 0.5 * (1.0 + tf.sqrt(1.0 + 4.0 * t * t))
        restart = f_next > f_x
        y_next = tf.where(restart, x_next, x_next + ((t - 1.0) / t_next) * (x_next - x))
        t_next = tf.where(restart, tf.ones_like(t_next), t_next)
        better = f_next <= f_x
        x_keep = tf.where(better, x_next, x)
        f_keep = tf.minimum(f_next, f_x)
        done = tf.logical_and(better, gap <= tolerance * tf.maximum(f_next, 1e-12 * scale))
        return step + 1, x_keep, y_next, t_next, f_keep, done

    f_start, _, _ = _gap(gram, start, mask)
    loop = (tf.constant(0), start, start, tf.constant(1.0, gram.dtype), f_start, tf.constant(False))
    _, x, _, _, _, _ = tf.while_loop(cond, body, loop)
    return x


def solve_gram_cvxopt(gram, mask=None):
    """The exact reference: cvxopt's QP on the present groups (NumPy in, NumPy out)."""
    try:
        import cvxopt
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("solver='cvxopt' needs the cvxopt package: `pip install cvxopt`.") from error
    gram = np.asarray(gram, dtype=np.float64)
    gram = 0.5 * (gram + gram.T)
    num = gram.shape[0]
    mask = np.ones(num, bool) if mask is None else np.asarray(mask, bool).reshape(-1)
    alpha = np.zeros(num)
    index = np.flatnonzero(mask)
    if index.size == 0:
        return alpha
    if index.size == 1:
        alpha[index] = 1.0
        return alpha
    sub = gram[np.ix_(index, index)]
    scale = max(float(np.max(np.abs(np.diag(sub)))), 1e-300)
    n = index.size
    result = cvxopt.solvers.qp(
        cvxopt.matrix(2.0 * sub / scale), cvxopt.matrix(np.zeros(n)),
        cvxopt.matrix(-np.eye(n)), cvxopt.matrix(np.zeros(n)),
        cvxopt.matrix(np.ones((1, n))), cvxopt.matrix(1.0),
        options={"show_progress": False, "abstol": 1e-12, "reltol": 1e-12, "feastol": 1e-12, "maxiters": 200})
    solution = np.maximum(np.array(result["x"]).reshape(-1), 0.0)
    alpha[index] = solution / solution.sum()
    return alpha
