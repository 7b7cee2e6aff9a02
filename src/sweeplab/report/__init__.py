"""``sweeplab report``: the comparison report of one or several sweep dirs.

collect.py reads job dirs into DataFrames, optuna_files.py an Optuna sweep's own files, stats.py
aggregates over seeds, compare.py compares two configs and judges a table of such comparisons,
values.py labels values and configs, plots.py draws, tables.py and sections.py say it, document.py
writes Markdown, HTML and terminal text, files.py writes each file atomically (and says which one
failed), build.py puts them together; studies.py checks the seed
notes' claims (docs/claims.yaml) for ``sweeplab studies``.
"""

MARGIN = 0.5  # accuracy points: the default equivalence margin (here, so `sweeplab --help` loads no pandas)
