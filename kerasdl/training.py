"""The stable training API: ``kerasdl.training.train(RunConfig)`` (the engine lives in
:mod:`kerasdl.engine.fit`; this module re-exports what users and scripts import)."""

from kerasdl.engine.fit import RunInterrupted, TrainingFailed, TrainResult, resume_config, train

__all__ = ["RunInterrupted", "TrainResult", "TrainingFailed", "resume_config", "train"]
