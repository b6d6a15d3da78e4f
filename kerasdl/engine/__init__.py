"""The task-agnostic engine: seeding, strategy, data, build in scope, the run directory,
resume-aware callbacks, atomic checkpoints, NaN guard, backup and resume (:mod:`.fit`), and the
training techniques every task can use (optimizers, schedules, regularisers, transfer)."""
