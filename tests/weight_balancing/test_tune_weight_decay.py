import numpy as np

from keras_longtail.weight_balancing import tune_weight_decay


def test_tune_weight_decay_picks_the_best_candidate():
    best, scores = tune_weight_decay(lambda wd: -abs(np.log10(wd) + 3), candidates=[1e-4, 1e-3, 1e-2])
    assert best == 1e-3 and len(scores) == 3
