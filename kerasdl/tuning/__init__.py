"""Hyperparameter search with Keras Tuner's oracles, each trial in its own process
(:mod:`.search`, :mod:`.trial_worker`)."""
