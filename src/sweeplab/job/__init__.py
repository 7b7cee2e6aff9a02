"""The job lifecycle: one job or one fused group from start to metrics.json; trackers, the Optuna trial,
signals, a worker process's set-up."""
