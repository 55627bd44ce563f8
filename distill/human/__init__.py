"""Human effort as a measured input: experts working on teacher drafts, and what their time costs.

- ``expert``: the embedded world's simulated expert (edit, mark the first error, pick);
- ``primitives``: what a human-effort primitive declares, and the work that runs one; each primitive
  (``edited``, ``first_error``, ``picked``) is its own module;
- ``labelstudio`` / ``argilla`` / ``prm800k``: round trips with the tools annotators use;
- ``champ``: CHAMP's published first-wrong-step marks on model solutions, as a ``first_error`` source;
- ``model_expert``: a model standing in for the expert (labelled simulated);
- ``ledger``: expert seconds of a run's data, once per unique example;
- ``stage``: the pipeline's ``expert`` step (and its wait for people's work).
"""
