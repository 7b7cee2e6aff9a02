"""sweeplab: Hydra-driven hyperparameter sweeps for PyTorch MLPs."""
