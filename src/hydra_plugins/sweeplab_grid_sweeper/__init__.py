"""sweeplab's grid sweeper for Hydra (`hydra/sweeper=grid`): Hydra's basic sweeper that resumes a sweep dir."""
