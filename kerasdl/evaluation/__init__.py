"""Figures of a model: textbook metrics (NumPy), calibration, uncertainty, the evaluation report
of a split, post-hoc calibration of a run, and generative-model measures."""
