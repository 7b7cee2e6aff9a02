"""sweeplab's pool launcher for Hydra (`hydra/launcher=pool`): a grid's jobs side by side on worker processes
that stay alive between jobs, so each worker imports torch and loads the data once."""
