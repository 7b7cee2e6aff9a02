"""``sweeplab report``: the comparison report of one or several sweep dirs.

collect.py reads job dirs into DataFrames, optuna_files.py an Optuna sweep's own files, stats.py
aggregates over seeds and tests against the best config, plots.py draws, tables.py and sections.py
say it, document.py writes Markdown, HTML and terminal text, build.py puts them together.
"""
