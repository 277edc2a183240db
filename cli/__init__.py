"""The `pose-tl` command line, installed as `pose_tl.cli`."""
