"""Evaluation: task metrics, their text and JSON reports, and pictures."""
