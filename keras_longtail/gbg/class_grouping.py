"""The result of gradient-balancing grouping: one group per class."""

import json

import keras
import numpy as np

from keras_longtail._internal import validation as _validation


@keras.saving.register_keras_serializable(package="keras_longtail")
class ClassGrouping:
    """Which group each class belongs to (the partition P* of GBG's Algorithm 1).

    Built by `group_classes` / `group_by_similarity`, or by hand from a list of
    group ids. Serializes to a plain-JSON config (`get_config`/`from_config`,
    `keras.saving.serialize_keras_object`) and to a JSON string (`to_json` /
    `from_json`); the K x K similarity matrix is kept only when present and can be
    left out of the JSON (it has K^2 entries).

    Args:
        groups: group id of every class, integers in `[0, num_groups)`.
        num_groups: number of groups G. Defaults to `max(groups) + 1`.
        similarity: optional K x K gradient cosine-similarity matrix A (Eq. 7).

    Attributes:
        groups: the group ids, a list of K ints.
        num_groups: G.
        num_classes: K.
        similarity: the matrix as a float32 NumPy array, or `None`.

    Example:

    >>> grouping = ClassGrouping([0, 0, 1, 2, 1])
    >>> grouping.num_groups, grouping.members(1), grouping.group_sizes()
    (3, [2, 4], [2, 2, 1])
    >>> ClassGrouping.from_json(grouping.to_json()).groups
    [0, 0, 1, 2, 1]
    """

    def __init__(self, groups, num_groups=None, similarity=None):
        if isinstance(groups, (str, bytes)) or not hasattr(groups, "__len__"):
            raise TypeError(f"Expected `groups` to be a sequence of group ids. Received: groups={groups!r}")
        array = np.asarray(groups)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"Expected `groups` to be a non-empty 1-D sequence. Received: groups={groups!r}")
        if not np.issubdtype(array.dtype, np.integer):
            if not np.issubdtype(array.dtype, np.number) or np.any(array != np.round(array)):
                raise TypeError(f"Expected integer group ids in `groups`. Received: groups={groups!r}")
        array = array.astype(np.int64)
        if np.any(array < 0):
            raise ValueError(f"Expected non-negative group ids in `groups`. Received: groups={groups!r}")
        if num_groups is None:
            num_groups = int(array.max()) + 1
        num_groups = _validation.check_int("num_groups", num_groups, minimum=1)
        if array.max() >= num_groups:
            raise ValueError(f"Expected group ids in [0, {num_groups}) (num_groups={num_groups}). "
                             f"Received: groups with id {int(array.max())}")
        self.groups = [int(g) for g in array]
        self.num_groups = num_groups
        if similarity is not None:
            similarity = np.asarray(similarity, dtype=np.float32)
            if similarity.shape != (array.size, array.size):
                raise ValueError(f"Expected `similarity` of shape ({array.size}, {array.size}). "
                                 f"Received shape {similarity.shape}")
        self.similarity = similarity

    @property
    def num_classes(self):
        return len(self.groups)

    def members(self, group):
        """The classes of `group`, in increasing order."""
        group = _validation.check_int("group", group, minimum=0, maximum=self.num_groups - 1)
        return [k for k, g in enumerate(self.groups) if g == group]

    def group_sizes(self):
        """The number of classes in every group (a list of G ints)."""
        return np.bincount(self.groups, minlength=self.num_groups).tolist()

    def within_group_imbalance(self, class_counts):
        """Per class c, how many times smaller it is than the largest class of its group.

            r_c = max_{k in g(c)} n_k / n_c

        GBG's group loss is the mean over the group's examples, so inside a group
        the largest class dominates; a class with a large r_c gets little of its
        group's weight (see `keras_longtail.gbg.GBGMixin`). Check the classes with
        r_c >= 10 before training.

        Args:
            class_counts: the training examples of every class, K non-negative
                numbers.

        Returns:
            A list of K floats, each >= 1 (`inf` for a class with no example in a
            group that has some; 1.0 when the whole group is empty).

        Example:

        >>> ClassGrouping([0, 0, 1]).within_group_imbalance([500, 20, 7])
        [1.0, 25.0, 1.0]
        """
        counts = np.asarray(class_counts, dtype=np.float64)
        if counts.shape != (self.num_classes,) or not np.all(np.isfinite(counts)) or np.any(counts < 0):
            raise ValueError(f"Expected `class_counts` to hold {self.num_classes} non-negative numbers, one per "
                             f"class of the grouping. Received: class_counts={class_counts!r}")
        largest = np.zeros(self.num_groups)
        np.maximum.at(largest, self.groups, counts)
        group_largest = largest[self.groups]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(group_largest > 0, group_largest / counts, 1.0)
        return [float(r) for r in ratio]

    def get_config(self):
        config = {"groups": list(self.groups), "num_groups": self.num_groups}
        if self.similarity is not None:
            config["similarity"] = self.similarity.tolist()
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def to_json(self, include_similarity=True):
        """The config as a JSON string (without the matrix if `include_similarity=False`)."""
        config = self.get_config()
        if not include_similarity:
            config.pop("similarity", None)
        return json.dumps(config)

    @classmethod
    def from_json(cls, text):
        """Rebuilds a grouping written by `to_json`."""
        return cls.from_config(json.loads(text))

    def __eq__(self, other):
        return isinstance(other, ClassGrouping) and self.groups == other.groups and self.num_groups == other.num_groups

    def __repr__(self):
        return f"ClassGrouping(num_groups={self.num_groups}, group_sizes={self.group_sizes()})"


def as_grouping(value):
    """A `ClassGrouping` from a ClassGrouping, its config dict or a list of group ids (private helper)."""
    if isinstance(value, ClassGrouping):
        return value
    if isinstance(value, dict):
        return ClassGrouping.from_config(value)
    return ClassGrouping(value)
