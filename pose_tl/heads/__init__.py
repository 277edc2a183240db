"""Task heads: Keras layers that turn backbone features into task outputs."""
