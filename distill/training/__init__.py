"""Student training: packing, losses, the loop, and its multi-process launch.

``train(job)`` is the entry point; ``TrainJob``/``TrainResult`` are its plain-data input and output.
"""
from distill.training.job import TrainJob, TrainResult

__all__ = ["TrainJob", "TrainResult", "train"]


def train(job: TrainJob, tracker=None, stop=None) -> TrainResult:
    """Train ``job`` and return its figures (see ``TrainJob`` for the files written).

    A job that names an accelerate config, outside a launched process, is handed to ``launch.run``
    (``accelerate launch`` on every rank); otherwise it trains in this process (``trainer.train_here``).
    ``stop(model, step) -> bool`` may end training early; it runs in this process only. Imports are lazy:
    torch and transformers are slow to load.
    """
    from distill.runtime import is_launched

    if job.config_path and not is_launched():
        from distill.training.launch import run

        if stop is not None:
            raise ValueError("train: a stop rule runs in this process; it cannot cross `accelerate launch`")
        return run(job, tracker)
    if job.objective != "sft":
        from distill.training.preference import train_preference_here

        if stop is not None:
            raise ValueError(f"train: objective={job.objective!r} takes no stop rule")
        return train_preference_here(job)
    from distill.training.trainer import train_here

    return train_here(job, tracker, stop)
