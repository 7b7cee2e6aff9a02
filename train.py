"""Train one MLP from Hydra's config groups: `python train.py`, `python train.py -m lr=0.1,0.01`."""
import gc

import hydra
from omegaconf import DictConfig

from sweeplab import sweeplab_task
from sweeplab.app import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@sweeplab_task
def main(cfg: DictConfig) -> float | tuple[float, ...]:
    import sweeplab.job.task  # imported here so a mistyped override is reported before torch loads

    return sweeplab.job.task.main(cfg)


if __name__ == "__main__":
    main()
    # All that is left is the interpreter's exit, whose garbage collections walk every object torch and
    # Hydra made (0.2 s of each command here): collect the garbage now, then exempt the rest.
    gc.collect()
    gc.freeze()
