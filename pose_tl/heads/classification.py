"""Classification head: pooled VGG features -> dense layers with dropout -> class probabilities."""

import keras


@keras.saving.register_keras_serializable(package="pose_tl")
class ClassificationHead(keras.layers.Layer):
    """GAP (or flatten) -> [BatchNorm] -> [Dense + ReLU + Dropout] * len(units) -> Dense softmax.

    Pretrained VGG features have scales that depend on the weights and the depth mapping (HED's block-5 features
    on depth are ~100x those of a random network); the optional batch normalisation standardises them so one
    learning rate suits every backbone.

    The class names are part of the layer's config, so they travel with every saved or exported model.
    Probabilities are computed in float32 even under mixed precision.
    """

    def __init__(self, class_names, pooling="gap", units=(256,), dropout=0.3, batch_norm=True, **kwargs):
        super().__init__(**kwargs)
        if len(class_names) < 2:
            raise ValueError(f"`class_names` must hold at least 2 names. Received: {class_names}")
        if pooling not in ("gap", "flatten"):
            raise ValueError(f"`pooling` must be 'gap' or 'flatten'. Received: {pooling!r}")
        self.class_names = [str(n) for n in class_names]
        self.pooling = pooling
        self.units = [int(u) for u in units]
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.norm = keras.layers.BatchNormalization(name="feature_norm") if self.batch_norm else None
        self.pool = keras.layers.GlobalAveragePooling2D() if pooling == "gap" else keras.layers.Flatten()
        self.hidden = [keras.layers.Dense(u, activation="relu", name=f"dense_{i}") for i, u in enumerate(self.units)]
        self.drops = [keras.layers.Dropout(self.dropout) for _ in self.units]
        self.classifier = keras.layers.Dense(len(self.class_names), name="logits")
        self.softmax = keras.layers.Activation("softmax", dtype="float32")

    def build(self, input_shape):
        shape = self.pool.compute_output_shape(input_shape)
        if self.norm is not None:
            self.norm.build(shape)
        for dense in self.hidden:
            dense.build(shape)
            shape = dense.compute_output_shape(shape)
        self.classifier.build(shape)

    def call(self, features, training=False):
        x = self.pool(features)
        if self.norm is not None:
            x = self.norm(x, training=training)
        for dense, drop in zip(self.hidden, self.drops):
            x = drop(dense(x), training=training)
        return self.softmax(self.classifier(x))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.class_names))

    def get_config(self):
        return {**super().get_config(), "class_names": self.class_names, "pooling": self.pooling,
                "units": self.units, "dropout": self.dropout, "batch_norm": self.batch_norm}
