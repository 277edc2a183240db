"""Training: optimizers and schedules per phase, callbacks, resumable multi-phase fit."""
