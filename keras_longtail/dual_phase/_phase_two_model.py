"""The phase-II training wrapper: adds L_intra and λ·L_dis (Eq. 9) to the compiled loss."""

import keras
from keras import ops


def _num_replicas():
    """Replicas of the current tf.distribute strategy (1 on other backends or without one)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


class PhaseTwoModel(keras.Model):
    """Wraps the expanded network for phase II of dual-phase training.

    `call` returns the network's logits (so compiled metrics, `evaluate` and
    `predict` see plain logits); when training it also runs the frozen old
    feature extractor (inference mode) on the same batch and adds
    λ·MemoryRetentiveLoss(old features, new features) with `add_loss`.
    `compute_loss` adds the intra-class margin loss to the compiled loss
    (cross-entropy). Everything is `keras.ops` plus `add_loss`/`compute_loss`,
    the public Keras extension points; it was tested on the TensorFlow backend
    (one device, `jit_compile=True`, `MirroredStrategy`).
    """

    def __init__(self, network, old_features, retentive_loss, retentive_weight, intra_loss=None,
                 feature_layer="features", **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.old_features = old_features
        self.retentive_loss = retentive_loss
        self.retentive_weight = float(retentive_weight)
        self.intra_loss = intra_loss
        self._features_and_logits = keras.Model(
            network.input, [network.get_layer(feature_layer).output, network.outputs[0]])

    def call(self, inputs, training=None):
        features, logits = self._features_and_logits(inputs, training=training)
        if training and self.retentive_weight > 0:
            old = ops.stop_gradient(self.old_features(inputs, training=False))
            value = self.retentive_weight * self.retentive_loss(old, features)
            # Keras' TensorFlow trainer divides `add_loss` terms by the number of replicas (it takes
            # them for per-replica means), but the loss object already returns this replica's share
            # of the global value (its reduction handles tf.distribute): undo the second division.
            self.add_loss(value * _num_replicas())
        return logits

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        if self.intra_loss is not None:
            loss = loss + self.intra_loss(y, y_pred, sample_weight=sample_weight)
        return loss
