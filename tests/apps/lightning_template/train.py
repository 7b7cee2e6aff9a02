"""A stand-in for lightning-hydra-template's train.py: the same config keys, no training.

It returns the metric named by ``optimized_metric``, computed from the searched keys so that
better choices give a higher value, as the template's task returns ``val/acc_best``.
"""
import math

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    lr_term = -abs(math.log10(cfg.model.optimizer.lr) + 2.5)  # best near lr = 3e-3
    size_term = (cfg.model.net.lin1_size + cfg.model.net.lin2_size + cfg.model.net.lin3_size) / 1000
    metrics = {"val/acc_best": 0.9 + 0.02 * lr_term + 0.01 * size_term - cfg.datamodule.batch_size / 1e4}
    return metrics[cfg.optimized_metric]


if __name__ == "__main__":
    main()
