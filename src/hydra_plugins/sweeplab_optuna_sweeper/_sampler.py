"""Seeding a sampler per trial, so no process redraws what another drew.

Optuna samplers keep their random state in the process: two processes whose samplers got the same
seed draw the same sequence. A resumed study, a second machine or a second local worker would so
propose the parameters of trials 0, 1, 2, ... again. Here trial N draws from a sampler seeded with
``SeedSequence([seed, N])``; trial numbers are unique in a study, so no two trials share a seed,
wherever and whenever they run, and a study started afresh with the same seed draws the same
parameters for the same trial numbers (what a sampler also learns from finished trials, as TPE
does, still depends on which trials had finished when a trial was asked).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState


def trial_seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class SeededPerTrial(BaseSampler):
    """Delegates to ``build(trial_seed(seed, N))``, a sampler made anew for each trial N."""

    def __init__(self, build: Callable[[int], BaseSampler], seed: int) -> None:
        self._build, self._seed = build, seed
        self._sampler = build(seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler = self._build(trial_seed(self._seed, trial.number))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()

