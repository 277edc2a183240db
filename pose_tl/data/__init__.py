"""Data: depth file I/O, datasets as tf.data pipelines, depth-aware augmentation, built-in sources."""
