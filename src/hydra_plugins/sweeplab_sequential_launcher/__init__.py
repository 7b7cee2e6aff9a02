"""sweeplab's sequential launcher (``hydra/launcher=sequential``, and train.py's ``hydra/launcher=basic``):
Hydra's basic launcher, composing once per group of jobs that differ only in the values they set."""
