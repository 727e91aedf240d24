"""The experiment defaults shared by every method: data sets, optimizer, schedule, network.

Each value is stated here once; the command line (`keras_longtail.cli`), `run_training`
and the benchmarks read it from here. A method's own defaults (GALA's accumulation,
GradTail's maximum weight, GBG's groups, ...) live with its entry in the method
registry (`keras_longtail.recipes.METHODS`).
"""

# name: (loader, default imbalance factor, default model, default epochs, default batch size)
DATASETS = {
    "digits-lt": ("digits", 20, "mlp", 40, 32),
    "cifar10-lt": ("cifar10", 100, "resnet32", 200, 128),
    "cifar100-lt": ("cifar100", 100, "resnet32", 200, 128),
    "fashion-mnist-lt": ("fashion_mnist", 100, "resnet32", 200, 128),
}
TASKS = ("classification", "depth")
DEPTH_DATASETS = ("waymo", "synthetic-depth")
DEPTH_METHODS = ("ce", "gradtail")

# --task depth: data set -> run_depth_training's defaults there (Waymo: the GradTail paper's setting; synthetic
# scenes: a half-width network at a lower resolution, so that a CPU reaches a meaningful error in minutes).
DEPTH_DATASET_DEFAULTS = {
    "waymo": {"epochs": 10, "learning_rate": 2e-4, "image_size": (192, 480), "width_multiplier": 1.0},
    "synthetic-depth": {"epochs": 12, "learning_rate": 1e-3, "image_size": (128, 320), "width_multiplier": 0.5},
}
DEPTH_BATCH_SIZE = 10
SYNTHETIC_DEPTH_SCENES = {"train_scenes": 600, "test_scenes": 200}

# digits-LT (an MLP): Adam with a cosine decay from this peak, no weight decay, no augmentation.
DIGITS_LEARNING_RATE = 0.05
# The CIFAR-style sets (ResNet-32): SGD with momentum 0.9 on the LDAM-DRW schedule from this peak, random crop and
# flip, and the weight decay below.
SGD_LEARNING_RATE = 0.1
SGD_MOMENTUM = 0.9
# Decoupled (Keras) weight decay of "CE + WD" on the CIFAR-style sets, everywhere (CLI, benchmarks, docs): the
# weight-balancing paper's tuned value (coupled 5e-3 at lr 0.01 with momentum 0.9, a 5e-4 shrink per step),
# converted to Keras' decoupled form at our lr 0.1. LDAM-DRW's plain CE uses 2e-3 (coupled 2e-4).
WEIGHT_DECAY = 5e-3
# The LDAM-DRW warm-up: 5 of 200 epochs.
WARMUP_FRACTION = 0.025
# `resnet32`'s batch-norm momentum (PyTorch's 0.1, the reference code's).
RESNET_BATCH_NORM_MOMENTUM = 0.9
