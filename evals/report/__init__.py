"""Report writing: ``report.md`` / ``report.html`` / ``report.json`` and PNG plots from ``evals.analysis``.

``sweep`` is the data-wall report of one sweep (``distill report RUN_DIR``), with its sections in
``precision_report`` and ``effort_report``; ``teachers_report`` and ``generations_report`` compare
teachers and follow generations; ``plots`` / ``generations_plots`` draw, ``render`` writes Markdown
and HTML.
"""
