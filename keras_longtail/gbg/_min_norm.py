"""In-graph pieces of the min-norm solver, shared by `min_norm_weights` and the GBG train step.

Everything here works on the (G, G) Gram matrix M of the gradients, in TensorFlow ops
(float64 inside: G is small), so it runs inside a compiled and distributed train step.
Under `TPUStrategy` the solve runs in float32 instead (TPUs have no float64); the
constants below follow the dtype of M.
"""

import numpy as np

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import distribute as _distribute

SOLVERS = ("active_set", "pgd", "frank_wolfe", "cvxopt")
NORMALIZATIONS = ("none", "l2", "loss", "loss+")


def solver_dtype():
    """float64, or float32 under `TPUStrategy` (TPUs have no float64); decided when tracing."""
    tf = _backend.import_tensorflow()
    on_tpu = isinstance(tf.distribute.get_strategy(), (tf.distribute.TPUStrategy,
                                                        tf.distribute.experimental.TPUStrategy))
    return tf.float32 if on_tpu else tf.float64


STEP_SOLVERS = ("active_set", "pgd", "frank_wolfe")  # the in-graph ones, usable inside a train step


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


def group_weights(gradients, losses, present, normalization, solver, max_iterations, tolerance, return_gap=False):
    """GBG's alpha (Eq. 11) from each replica's share of G gradients and losses; float32 (G,).

    `gradients` is a list of G gradient lists (one per group), `losses` the G group
    losses (needed by `"loss"` and `"loss+"`), `present` G booleans (default: the
    groups whose gradient is not identically zero). Inside a `tf.distribute` replica
    context the gradients and losses are summed over replicas before the solve (Keras
    losses, and so their gradients, are already each replica's share of the global
    value), so every replica gets the same alpha. One group gives alpha = [1].
    `all_reduce_group_inputs` followed by `solve_group_weights` is the same in two parts.
    With `return_gap`, returns (alpha, relative_gap) (float32; see `relative_gap`).
    """
    tf = _backend.import_tensorflow()
    if len(gradients) == 1:
        one = tf.ones([1], tf.float32)
        return (one, tf.zeros([], tf.float32)) if return_gap else one
    gradients, losses = all_reduce_group_inputs(gradients, losses, normalization)
    return solve_group_weights(gradients, losses, present, normalization, solver, max_iterations, tolerance,
                               return_gap)


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


def solve_group_weights(gradients, losses, present, normalization, solver, max_iterations, tolerance,
                        return_gap=False):
    """Alpha (and with `return_gap` its relative gap) from global (already all-reduced) G gradients and
    losses; no synchronization."""
    tf = _backend.import_tensorflow()
    if len(gradients) == 1:
        one = tf.ones([1], tf.float32)
        return (one, tf.zeros([], tf.float32)) if return_gap else one
    return solve_gram_weights(gram_matrix(gradients), losses, present, normalization, solver, max_iterations,
                              tolerance, return_gap)


def solve_gram_weights(gram, losses, present, normalization, solver, max_iterations, tolerance, return_gap=False):
    """`solve_group_weights` from the (G, G) Gram matrix of the global gradients."""
    tf = _backend.import_tensorflow()
    if present is None:
        present = tf.linalg.diag_part(gram) > 0.0
    scale = normalizers(gram, losses, normalization)
    gram = gram / (scale[:, None] * scale[None, :])
    alpha, gap = solve_gram(gram, present, solver, max_iterations, tolerance, return_gap=True)
    alpha, gap = tf.cast(alpha, tf.float32), tf.cast(gap, tf.float32)
    return (alpha, gap) if return_gap else alpha


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


def solve_gram(gram, mask, solver, max_iterations, tolerance, return_gap=False):
    """Like `_solve_gram`; eager calls run a cached `tf.function` (a while_loop op by op is slow).

    Solves in `solver_dtype()`: float64, float32 under `TPUStrategy`. Returns alpha,
    or (alpha, relative_gap) with `return_gap` (see `relative_gap`).
    """
    tf = _backend.import_tensorflow()
    if not tf.executing_eagerly():
        alpha, gap = _solve_gram(gram, mask, solver, max_iterations, tolerance)
    else:
        gram = tf.convert_to_tensor(gram)
        num = gram.shape[0]
        mask = tf.ones([num], tf.bool) if mask is None else tf.cast(tf.reshape(mask, [-1]), tf.bool)
        key = (solver, int(max_iterations), float(tolerance), num)  # one trace per problem size
        if key not in _COMPILED:
            _COMPILED[key] = tf.function(lambda g, m: _solve_gram(g, m, solver, max_iterations, tolerance))
        alpha, gap = _COMPILED[key](tf.cast(gram, solver_dtype()), mask)
    return (alpha, gap) if return_gap else alpha


def relative_gap(gram, alpha, mask=None):
    """The certificate of a solve: min(gap, f) / max(f, sqrt(eps) max_i M_ii), f = x'Mx.

    For min x'Mx over the simplex, gap = x'Mx - min_{i present} (Mx)_i is the
    Frank-Wolfe duality gap, an upper bound on f - min (the minimum is at least
    min_i (Mx)_i, by convexity); so is f itself (M is PSD, the minimum >= 0). Divided
    by f the bound is the relative excess of the objective; when the optimum is the
    origin (f -> 0, where the gap only falls like sqrt(f)), f is measured against
    sqrt(eps) times the largest M_ii (1.5e-8 in float64: a combined gradient 1e-4
    times the longest one counts as zero). 0 at the optimum; the solvers stop once it
    is at most `tolerance`. A scalar of M's dtype (0 when no group is present).
    """
    tf = _backend.import_tensorflow()
    gram = tf.convert_to_tensor(gram)
    alpha = tf.cast(alpha, gram.dtype)
    num = tf.shape(gram)[0]
    mask = tf.ones([num], tf.bool) if mask is None else tf.cast(tf.reshape(mask, [-1]), tf.bool)
    scale = tf.reduce_max(tf.abs(tf.linalg.diag_part(gram)))
    f, gap, _ = _gap(gram, alpha, mask)
    ratio = _ratio(f, gap, scale)
    return tf.where(tf.reduce_any(mask), ratio, tf.zeros_like(ratio))


def _ratio(f, gap, scale):
    """`relative_gap` from f = x'Mx, the Frank-Wolfe gap and max_i M_ii."""
    tf = _backend.import_tensorflow()
    floor = tf.maximum(f, float(np.sqrt(np.finfo(f.dtype.as_numpy_dtype).eps)) * scale)
    bound = tf.maximum(tf.minimum(gap, f), 0.0)
    return bound / tf.where(floor > 0.0, floor, tf.ones_like(floor))


def _solve_gram(gram, mask, solver, max_iterations, tolerance):
    """(alpha, relative_gap): alpha on the (masked) simplex minimizing alpha' M alpha, a (G,) tensor of
    `solver_dtype()`, and its certified relative duality gap (`relative_gap`).

    Absent groups (mask False) get 0; with no group present alpha is all zeros. A Gram
    matrix with an inf or NaN (gradients that overflowed, e.g. a float16 step that
    `LossScaleOptimizer` will skip) gives the uniform weights and a NaN gap, without
    running the solver.
    """
    tf = _backend.import_tensorflow()
    gram = tf.cast(gram, solver_dtype())
    gram = 0.5 * (gram + tf.transpose(gram))
    finite = tf.reduce_all(tf.math.is_finite(gram))
    gram = tf.where(finite, gram, tf.eye(tf.shape(gram)[0], dtype=gram.dtype))
    num = tf.shape(gram)[0]
    if mask is None:
        mask = tf.ones([num], tf.bool)
    mask = tf.cast(tf.reshape(mask, [-1]), tf.bool)
    present = tf.reduce_sum(tf.cast(mask, gram.dtype))
    uniform = tf.cast(mask, gram.dtype) / tf.maximum(present, 1.0)
    static_num = gram.shape[0]
    if static_num == 1:
        alpha = uniform
    elif static_num == 2:
        alpha = _two_gradients(gram, mask, uniform)
    else:
        scale = tf.reduce_max(tf.abs(tf.linalg.diag_part(gram)))
        if solver == "frank_wolfe":
            alpha = _frank_wolfe(gram, mask, uniform, scale, max_iterations, tolerance)
        elif solver == "pgd":
            alpha = _accelerated_projected_gradient(gram, mask, uniform, scale, max_iterations, tolerance)
        else:
            alpha = _active_set(gram, mask, uniform, scale, max_iterations, tolerance)
        alpha = tf.where(present > 0.0, alpha, tf.zeros_like(alpha))
    alpha = tf.where(finite, alpha, uniform)
    gap = relative_gap(gram, alpha, mask)
    return alpha, tf.where(finite, gap, tf.constant(np.nan, gap.dtype))


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
        done = _ratio(f, gap, scale) <= tolerance
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


def _active_set_step(gram, x, support, scale, ridge):
    """One step of Wolfe's min-norm-point algorithm on the set `support`; never increases x'Mx.

    Solves the equality-constrained problem min z'Mz s.t. sum_S z = 1, z = 0 off S
    (a (G, G) linear solve; off S the system is the identity, a small ridge keeps it
    regular when gradients are affinely dependent), then moves from x towards that
    affine minimizer as far as x stays non-negative (all the way when the minimizer
    is feasible: then it is the optimum on that face). Returns the new point and its
    objective (x and x'Mx when the step does not lower it).
    """
    tf = _backend.import_tensorflow()
    inside = tf.cast(support, gram.dtype)
    unit = tf.where(scale > 0.0, scale, tf.ones_like(scale))
    system = (gram * inside[:, None] * inside[None, :]
              + tf.linalg.diag(tf.where(support, ridge * unit, unit)))
    z = tf.linalg.solve(system, inside[:, None])[:, 0]
    total = tf.reduce_sum(z)
    valid = tf.logical_and(total > 0.0, tf.reduce_all(tf.math.is_finite(z)))
    target = tf.where(valid, z / tf.where(valid, total, tf.ones_like(total)), x)
    direction = target - x
    shrinking = tf.logical_and(support, direction < 0.0)
    limits = tf.where(shrinking, x / tf.where(shrinking, -direction, tf.ones_like(direction)),
                      tf.ones_like(x))
    step = tf.minimum(tf.reduce_min(limits), 1.0)
    moved = tf.where(support, tf.maximum(x + step * direction, 0.0), tf.zeros_like(x))
    moved = moved / tf.maximum(tf.reduce_sum(moved), tf.constant(1e-30, x.dtype))
    f_x = tf.reduce_sum(x * tf.linalg.matvec(gram, x))
    f_moved = tf.reduce_sum(moved * tf.linalg.matvec(gram, moved))
    better = tf.logical_and(valid, f_moved < f_x)
    return tf.where(better, moved, x), tf.where(better, f_moved, f_x), tf.logical_and(better, step >= 1.0)


def _accelerated_projected_gradient(gram, mask, start, scale, max_iterations, tolerance):
    """FISTA on 1/2 x'Mx over the simplex (step 1/L, L = the smaller of the Gershgorin and
    Frobenius bounds on the largest eigenvalue), with function-value restart; stops on the
    Frank-Wolfe duality gap. Slow on ill-scaled problems (gradient norms over orders of
    magnitude): `_active_set` is the default."""
    tf = _backend.import_tensorflow()
    lipschitz = _lipschitz(gram)

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
        done = tf.logical_and(better, _ratio(f_next, gap, scale) <= tolerance)
        return step + 1, x_keep, y_next, t_next, f_keep, done

    f_start, _, _ = _gap(gram, start, mask)
    loop = (tf.constant(0), start, start, tf.constant(1.0, gram.dtype), f_start, tf.constant(False))
    _, x, _, _, _, _ = tf.while_loop(cond, body, loop)
    return x


def _lipschitz(gram):
    """An upper bound on the largest eigenvalue of the PSD M: min(Gershgorin, Frobenius); 1 for M = 0."""
    tf = _backend.import_tensorflow()
    gershgorin = tf.reduce_max(tf.reduce_sum(tf.abs(gram), axis=1))
    frobenius = tf.sqrt(tf.reduce_sum(gram * gram))
    bound = tf.minimum(gershgorin, frobenius)
    return tf.where(bound > 0.0, bound, tf.ones_like(bound))


def _face_step(gram, x, face, scale, ridge):
    """Wolfe's move on the set `face`: towards the affine minimizer, as far as x stays >= 0.

    Solves min z'Mz s.t. sum_face z = 1, z = 0 off the face (a (G, G) linear solve;
    off the face the system is the identity, a small ridge keeps it regular when the
    gradients are affinely dependent), then moves from x towards z as far as x stays
    non-negative (all the way when z is feasible: then it is the optimum on that
    face). Returns the new point, its objective and whether it is that face's optimum
    (a full step), or x, x'Mx and False when the move does not lower the objective.
    """
    tf = _backend.import_tensorflow()
    inside = tf.cast(face, gram.dtype)
    unit = tf.where(scale > 0.0, scale, tf.ones_like(scale))
    system = gram * inside[:, None] * inside[None, :] + tf.linalg.diag(tf.where(face, ridge * unit, unit))
    z = tf.linalg.solve(system, inside[:, None])[:, 0]
    total = tf.reduce_sum(z)
    valid = tf.logical_and(total > 0.0, tf.reduce_all(tf.math.is_finite(z)))
    target = tf.where(valid, z / tf.where(valid, total, tf.ones_like(total)), x)
    direction = target - x
    shrinking = tf.logical_and(face, direction < 0.0)
    limits = tf.where(shrinking, x / tf.where(shrinking, -direction, tf.ones_like(direction)), tf.ones_like(x))
    step = tf.minimum(tf.reduce_min(limits), 1.0)
    moved = tf.where(face, tf.maximum(x + step * direction, 0.0), tf.zeros_like(x))
    moved = moved / tf.maximum(tf.reduce_sum(moved), tf.constant(1e-30, x.dtype))
    f_x = tf.reduce_sum(x * tf.linalg.matvec(gram, x))
    f_moved = tf.reduce_sum(moved * tf.linalg.matvec(gram, moved))
    better = tf.logical_and(valid, f_moved < f_x)
    return tf.where(better, moved, x), tf.where(better, f_moved, f_x), tf.logical_and(better, step >= 1.0)


def _active_set(gram, mask, uniform, scale, max_iterations, tolerance):
    """Wolfe's min-norm-point algorithm (an active-set method), with a projected-gradient safeguard.

    Keeps a face of the simplex (the support of x). When x is the optimum of its face,
    a major cycle adds the vertex with the smallest (Mx)_i (the one the duality gap
    points to) and moves towards the affine minimizer of the larger face; otherwise a
    minor cycle moves towards the affine minimizer of the face itself, as far as
    feasibility allows (dropping the weights that hit 0). One (G, G) linear solve per
    iteration. When a major cycle does not lower x'Mx (rounding), a projected-gradient
    step (1/L) does. In exact arithmetic it ends at the optimum in finitely many
    iterations, whatever the scaling of the gradients (about twice the optimal
    support size from a vertex). Starts from the uniform weights when they already
    meet the tolerance (zero or identical gradients), else from the present vertex of
    smallest norm. Stops when the certificate `relative_gap` is at most `tolerance`,
    or when no move lowers the objective.
    """
    tf = _backend.import_tensorflow()
    big = tf.constant(gram.dtype.max, gram.dtype)
    size = tf.shape(gram)[0]
    lipschitz = _lipschitz(gram)
    ridge = tf.constant(1e-12 if gram.dtype == tf.float64 else 1e-6, gram.dtype)

    def converged(x):
        f, gap, mx = _gap(gram, x, mask)
        return f, _ratio(f, gap, scale) <= tolerance, mx

    def cond(step, x, at_optimum, done):
        return tf.logical_and(step < max_iterations, tf.logical_not(done))

    def body(step, x, at_optimum, done):
        f_x, _, mx = _gap(gram, x, mask)
        face = tf.logical_and(mask, x > 0.0)
        entering = tf.one_hot(tf.argmin(tf.where(mask, mx, big), output_type=tf.int32), size,
                              on_value=True, off_value=False)
        active = tf.where(at_optimum, tf.logical_or(face, entering), face)
        moved, f_moved, full = _face_step(gram, x, active, scale, ridge)
        improved = f_moved < f_x
        projected = _project_to_simplex(x - mx / lipschitz, mask)
        f_projected = tf.reduce_sum(projected * tf.linalg.matvec(gram, projected))
        rescue = tf.logical_and(tf.logical_not(improved), tf.logical_and(at_optimum, f_projected < f_x))
        x_next = tf.where(improved, moved, tf.where(rescue, projected, x))
        # a minor cycle that cannot improve means x is its face's optimum: a major cycle next
        at_optimum_next = tf.where(improved, full, tf.logical_not(at_optimum))
        stuck = tf.logical_and(tf.logical_not(improved), tf.logical_and(at_optimum, tf.logical_not(rescue)))
        _, done, _ = converged(x_next)
        return step + 1, x_next, at_optimum_next, tf.logical_or(done, stuck)

    _, uniform_done, _ = converged(uniform)
    diagonal = tf.where(mask, tf.linalg.diag_part(gram), big)
    vertex = tf.one_hot(tf.argmin(diagonal, output_type=tf.int32), size, dtype=gram.dtype)
    start = tf.where(uniform_done, uniform, vertex)
    _, start_done, _ = converged(start)
    # a vertex is the optimum of its (0-dimensional) face
    _, x, _, _ = tf.while_loop(cond, body, (tf.constant(0), start, tf.logical_not(uniform_done), start_done))
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
