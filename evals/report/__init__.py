"""Report writing: ``report.md`` / ``report.html`` / ``report.json`` and PNG plots from ``evals.analysis``.

``sweep`` is the data-wall report of one sweep (``distill report RUN_DIR``); ``plots`` and the
``*_report`` / ``*_plots`` modules add its sections and the other experiments' reports.
"""
