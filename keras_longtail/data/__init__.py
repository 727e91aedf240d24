"""Long-tailed data: profiles, subsampling, loaders, shot splits and samplers."""

from keras_longtail.data.class_balanced_sampler import class_balanced_sampler
from keras_longtail.gbg.group_aware_completion import completion_probabilities
from keras_longtail.gbg.group_aware_completion import group_aware_completion
from keras_longtail.data.imbalance_profile import imbalance_profile
from keras_longtail.data.load_cifar_lt import load_cifar_lt
from keras_longtail.data.load_digits_lt import load_digits_lt
from keras_longtail.data.load_fashion_mnist_lt import load_fashion_mnist_lt
from keras_longtail.data.load_imagenet_lt import load_imagenet_lt
from keras_longtail.data.load_inaturalist import load_inaturalist
from keras_longtail.data.load_places_lt import load_places_lt
from keras_longtail.data.load_waymo_depth import load_waymo_depth
from keras_longtail.data.long_tailed import long_tailed
from keras_longtail.data.long_tailed_data import LongTailedData
from keras_longtail.data.progressively_balanced_sampler import progressive_class_probabilities
from keras_longtail.data.progressively_balanced_sampler import progressively_balanced_sampler
from keras_longtail.data.shot_splits import ShotSplits
from keras_longtail.data.shot_splits import shot_splits
from keras_longtail.data.streaming_long_tailed_data import StreamingLongTailedData
from keras_longtail.data.synthetic_depth_scenes import synthetic_depth_scenes
from keras_longtail.data.two_gaussians import two_gaussians
from keras_longtail.data.with_ground_truth_mask import with_ground_truth_mask

__all__ = [
    "LongTailedData",
    "ShotSplits",
    "StreamingLongTailedData",
    "class_balanced_sampler",
    "completion_probabilities",
    "group_aware_completion",
    "imbalance_profile",
    "load_cifar_lt",
    "load_digits_lt",
    "load_fashion_mnist_lt",
    "load_imagenet_lt",
    "load_inaturalist",
    "load_places_lt",
    "load_waymo_depth",
    "long_tailed",
    "progressive_class_probabilities",
    "progressively_balanced_sampler",
    "shot_splits",
    "synthetic_depth_scenes",
    "two_gaussians",
    "with_ground_truth_mask",
]
