"""sweeplab's fused launcher for Hydra (`hydra/launcher=fused`): same-shape jobs trained as one stacked model."""
