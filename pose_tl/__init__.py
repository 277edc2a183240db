"""pose_tl: transfer learning on depth images with VGG backbones.

Recipe (YAML) -> typed config -> builders -> Keras model -> train / evaluate / export.
"""

__version__ = "0.1.0"
