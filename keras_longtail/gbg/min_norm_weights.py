"""The MGDA min-norm weights of a set of gradients."""

import numpy as np

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail.gbg import _min_norm


def min_norm_weights(gradients, *, solver="active_set", normalization="none", losses=None, mask=None,
                     max_iterations=250, tolerance=1e-6, return_gap=False):
    """Weights alpha on the simplex minimizing the norm of sum_i alpha_i g_i (MGDA).

    Solves (Sener & Koltun 2018; Eq. 11 of the GBG paper)

        min_alpha || sum_i alpha_i g_i / c_i ||^2   s.t.  sum_i alpha_i = 1,  alpha_i >= 0,

    on the Gram matrix M_ij = <g_i, g_j>. The normalizers c_i follow the MGDA
    code: `"none"` (c_i = 1), `"l2"` (||g_i||), `"loss"` (L_i) and `"loss+"`
    (L_i ||g_i||). As in that code, the weights are meant for the *raw*
    gradients: the update direction is d = sum_i alpha_i g_i (GBG Eq. 12).
    d is zero or a descent direction for every objective.

    Solvers:

    - `"active_set"` (default): Wolfe's min-norm-point algorithm (an active-set
      method: the exact minimizer on a face of the simplex by a (G, G) linear
      solve, faces changed by the duality gap's vertex), with a projected-gradient
      safeguard, in TensorFlow ops. Exact in finitely many iterations whatever the
      scaling of the gradients; on ill-scaled problems (gradient norms 0.1-10,
      G = 3-64) it met `tolerance=1e-6` within the default 250 iterations on every
      one of 200 random problems tested against cvxopt.
    - `"pgd"`: accelerated projected gradient (FISTA with restart, sort-based
      simplex projection). Fine on well-scaled problems, slow on ill-scaled ones
      (up to 60 % above the optimum after 250 iterations on the problems above).
    - `"frank_wolfe"`: Frank-Wolfe with exact line search as in Sener & Koltun, but
      with pairwise steps (weight moves from the worst support vertex to the best
      one), which converge linearly where plain steps zig-zag (still slower than
      the others on ill-scaled problems).
    - `"cvxopt"`: the exact quadratic program, solved by cvxopt on the host
      (NumPy result; not usable inside a compiled step). The reference in tests.

    Two gradients are always solved in closed form,
    gamma = clip((M22 - M12) / (M11 + M22 - 2 M12), 0, 1). The TensorFlow solvers
    work in float64 and stop when the Frank-Wolfe duality gap
    x'Mx - min_i (Mx)_i (an upper bound on x'Mx minus its minimum) falls below
    `tolerance` times the objective, or after `max_iterations`; they run inside
    `tf.function`, `jit_compile=True` and a distributed step. Zero and collinear
    gradients give finite weights (ties are broken towards the uniform start).

    Whether a solve reached the tolerance is never silent: `return_gap=True` also
    returns the certified relative gap of the weights returned: the duality gap
    (x'Mx - min_i (Mx)_i, or x'Mx if smaller) over x'Mx, an upper bound on their
    relative excess over the optimum (when the optimum is the origin, x'Mx is
    measured against 1.5e-8 max_i M_ii instead). It is at most `tolerance` when the
    solver converged and larger when it stopped at `max_iterations`. The GBG train
    step logs the largest of these per epoch as `gbg_solver_gap`.

    Args:
        gradients: a (G, D) matrix, or a list of G same-shaped tensors, or a list of G
            same-structured lists of tensors (e.g. one Keras gradient list per objective;
            `None` entries count as zeros).
        solver: `"active_set"`, `"pgd"`, `"frank_wolfe"` or `"cvxopt"`. Defaults to `"active_set"`.
        normalization: `"none"`, `"l2"`, `"loss"` or `"loss+"`. Defaults to `"none"`.
        losses: the G objective values, needed by `"loss"` and `"loss+"`.
        mask: optional G booleans; objectives marked False (absent groups) get
            alpha = 0. With none present, alpha is all zeros. Defaults to all present.
        max_iterations: iteration bound of the TensorFlow solvers. Defaults to 250.
        tolerance: relative duality-gap tolerance. Defaults to `1e-6`.
        return_gap: also return the relative duality gap of the result. Defaults to `False`.

    Returns:
        A float (G,) tensor (NumPy array for `solver="cvxopt"`) on the simplex; with
        `return_gap`, the pair (alpha, gap), gap a float32 scalar tensor (a NumPy float
        for `"cvxopt"`): the solve met the tolerance iff `gap <= tolerance`.

    Example:

    >>> import numpy as np
    >>> g = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> np.round(np.asarray(min_norm_weights(g)), 6).tolist()
    [0.5, 0.5]
    >>> np.round(np.asarray(min_norm_weights(g * [[1.0], [3.0]], normalization="l2")), 6).tolist()
    [0.5, 0.5]
    >>> np.round(min_norm_weights([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], solver="cvxopt"), 4).tolist()
    [0.5, 0.5, 0.0]
    >>> alpha, gap = min_norm_weights([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], return_gap=True)
    >>> bool(gap <= 1e-6), np.round(np.asarray(alpha), 6).tolist()
    (True, [0.5, 0.5, 0.0])

    References:
        Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
        NeurIPS 2018, https://arxiv.org/abs/1810.04650.
        Li et al., "Long-Tailed Learning as Multi-Objective Optimization", AAAI 2024,
        https://arxiv.org/abs/2310.20490.
    """
    tf = _backend.import_tensorflow()
    _validation.check_choice("solver", solver, _min_norm.SOLVERS)
    _validation.check_choice("normalization", normalization, _min_norm.NORMALIZATIONS)
    max_iterations = _validation.check_int("max_iterations", max_iterations, minimum=1)
    tolerance = _validation.check_float("tolerance", tolerance, minimum=0.0)
    if not isinstance(return_gap, bool):
        raise ValueError(f"Expected `return_gap` to be a bool. Received: return_gap={return_gap!r}")
    gradients = _as_gradient_list(gradients)
    num = len(gradients)
    if normalization in ("loss", "loss+"):
        if losses is None:
            raise ValueError(f"normalization={normalization!r} needs the objective values. Received: losses=None")
        if tf.reshape(tf.convert_to_tensor(losses), [-1]).shape[0] != num:
            raise ValueError(f"Expected `losses` to hold {num} values (one per gradient). Received: losses={losses!r}")
    if mask is not None:
        mask = tf.reshape(tf.cast(tf.convert_to_tensor(mask), tf.bool), [-1])
        if mask.shape[0] != num:
            raise ValueError(f"Expected `mask` to hold {num} booleans (one per gradient). Received: mask={mask!r}")
    gram = _min_norm.gram_matrix(gradients)
    scale = _min_norm.normalizers(gram, losses, normalization)
    gram = gram / (scale[:, None] * scale[None, :])
    if solver == "cvxopt":
        alpha = _min_norm.solve_gram_cvxopt(np.asarray(gram), None if mask is None else np.asarray(mask))
        if not return_gap:
            return alpha
        return alpha, float(_min_norm.relative_gap(tf.cast(gram, tf.float64), alpha, mask))
    alpha, gap = _min_norm.solve_gram(gram, mask, solver, max_iterations, tolerance, return_gap=True)
    dtype = tf.nest.flatten(gradients[0])[0].dtype
    alpha = tf.cast(alpha, dtype if dtype.is_floating else tf.float32)
    return (alpha, tf.cast(gap, tf.float32)) if return_gap else alpha


def _as_gradient_list(gradients):
    tf = _backend.import_tensorflow()
    if isinstance(gradients, (list, tuple)):
        if not gradients:
            raise ValueError("Expected at least one gradient. Received: gradients=[]")
        converted = [tf.nest.map_structure(lambda t: None if t is None else tf.convert_to_tensor(t), g)
                     for g in gradients]
        if all(isinstance(g, tf.Tensor) for g in converted) and converted[0].shape.rank == 0:
            # a flat list of numbers: one (D,) row
            converted = [tf.convert_to_tensor(gradients)]
    else:
        matrix = tf.convert_to_tensor(gradients)
        if matrix.shape.rank != 2:
            raise ValueError(
                "Expected `gradients` to be a (G, D) matrix or a list of G gradients. "
                f"Received a tensor of shape {matrix.shape}")
        converted = list(tf.unstack(matrix)) if matrix.shape[0] is not None else None
        if converted is None:
            raise ValueError("Expected `gradients` with a known number of rows G.")
        if not converted:
            raise ValueError("Expected at least one gradient. Received: gradients of shape (0, D)")
    first = converted[0]
    try:
        for index, g in enumerate(converted[1:], start=1):
            tf.nest.assert_same_structure(first, g)
    except (ValueError, TypeError) as error:
        raise ValueError(f"Expected every gradient in `gradients` to have the same structure: {error}") from None
    reference = [None if t is None else t.shape for t in tf.nest.flatten(first)]
    for index, g in enumerate(converted):
        for position, (want, t) in enumerate(zip(reference, tf.nest.flatten(g))):
            if t is None or want is None:
                continue
            if not want.is_compatible_with(t.shape) or want.num_elements() != t.shape.num_elements():
                raise ValueError(
                    "Expected every gradient in `gradients` to have the same shapes. Received "
                    f"shape {t.shape} for gradient {index} (leaf {position}) and {want} for gradient 0")
    dtypes = {t.dtype for g in converted for t in tf.nest.flatten(g) if t is not None}
    if len(dtypes) > 1:
        target = tf.float64 if tf.float64 in dtypes else tf.float32
        converted = [tf.nest.map_structure(lambda t: None if t is None else tf.cast(t, target), g)
                     for g in converted]
    for g in converted:
        for t in tf.nest.flatten(g):
            if t is not None and not t.dtype.is_floating:
                converted = [tf.nest.map_structure(lambda t: None if t is None else tf.cast(t, tf.float32), h)
                             for h in converted]
                return converted
    return converted
