"""The batches `benchmarks.studies.gbg_diagnostics` analyses."""

import numpy as np

from benchmarks.studies import gbg_diagnostics
from keras_longtail import data


def test_gac_batches_hold_every_group_and_random_ones_are_plain_batches():
    loaded = data.load_digits_lt()
    groups = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 1])  # the rarest class alone, as on CIFAR-10-LT seed 0
    for _, labels in gbg_diagnostics._batches(loaded, groups, "gac").take(5):
        assert set(groups[labels.numpy()]) == {0, 1}
    sizes = [int(labels.shape[0]) for _, labels in gbg_diagnostics._batches(loaded, groups, "random").take(3)]
    assert sizes == [128, 128, 128]
