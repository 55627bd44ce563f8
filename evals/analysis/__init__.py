"""The statistics behind every report: pure functions on run records, no files, no plots.

``saturation`` fits the curves and computes N_sat; ``uncertainty`` bootstraps them (intervals, crossover,
best mix); ``frontier`` prices runs into a cost frontier; ``checks`` and ``verdict`` decide which claims
the data supports; ``effort``, ``teachers`` and ``generations`` analyse the human-effort, several-teacher
and repeated-generation experiments. ``evals.report`` arranges the results into files.
"""
