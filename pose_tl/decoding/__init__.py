"""Decoding the pose head's maps into people, in TensorFlow ops so it exports with the model."""
