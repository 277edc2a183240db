"""The detection task: proposals (RPN, depth segments), RoIAlign box head, targets and post-processing."""
