"""Synthetic depth people (Shotton et al., CVPR 2011 style): skeletons, bodies, scenes, sensor model, labels."""
