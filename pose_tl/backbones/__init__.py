"""Backbones: VGG16/VGG19 adapted to single-channel depth."""
