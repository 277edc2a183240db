"""Export: TensorFlow SavedModels with raw-depth signatures, loadable with TensorFlow alone."""
