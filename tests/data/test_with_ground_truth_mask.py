import numpy as np
import pytest
import tensorflow as tf

from keras_longtail import data


def test_mask_marks_exactly_the_pixels_with_ground_truth():
    depth = np.array([[[[0.0], [12.5]], [[np.nan], [-1.0]]], [[[3.0], [0.0]], [[80.0], [1e-3]]]], np.float32)
    images = np.zeros((2, 2, 2, 3), np.float32)
    for dataset in (tf.data.Dataset.from_tensor_slices((images, depth)),
                    tf.data.Dataset.from_tensor_slices((images, depth)).batch(2)):
        masks = np.concatenate([np.reshape(m, (-1, 2, 2, 1)) for _, _, m in
                                data.with_ground_truth_mask(dataset).as_numpy_iterator()])
        np.testing.assert_array_equal(masks[..., 0], [[[0, 1], [0, 0]], [[1, 0], [1, 1]]])
        assert masks.dtype == np.float32


def test_bad_input_names_the_argument():
    with pytest.raises(TypeError, match="dataset"):
        data.with_ground_truth_mask(np.zeros((2, 4, 4, 1)))
    with pytest.raises(ValueError, match="element_spec"):
        data.with_ground_truth_mask(tf.data.Dataset.from_tensor_slices(np.zeros((2, 4, 4, 1))))
