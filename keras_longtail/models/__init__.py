"""Reference models with a named `"classifier"` layer."""

from keras_longtail.models.depth_unet import depth_unet
from keras_longtail.models.mlp import mlp
from keras_longtail.models.resnet32 import resnet32
from keras_longtail.models.resnet50 import resnet50
from keras_longtail.models.resnext50 import resnext50

__all__ = ["depth_unet", "mlp", "resnet32", "resnet50", "resnext50"]
