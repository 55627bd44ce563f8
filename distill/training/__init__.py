"""Student training: packing, losses, the loop, and its multi-process launch.

``train(job)`` is the entry point; ``TrainJob``/``TrainResult`` are its plain-data input and output.
"""
from distill.training.job import TrainJob, TrainResult

__all__ = ["TrainJob", "TrainResult", "train"]


def train(job: TrainJob, tracker=None, stop=None) -> TrainResult:
    """See ``distill.training.trainer.train`` (imported lazily: torch and transformers are slow to load)."""
    from distill.training.trainer import train as _train

    return _train(job, tracker, stop)
