"""A Hydra app for the process-lifetime tests (no torch): job ``x`` writes ``pid`` into its job dir, then
holds (sleeps until a signal ends it) when its job number is ``hold_from`` or more, else returns ``x``."""
import os
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=".", config_name="config")
def main(cfg: DictConfig) -> float:
    job = HydraConfig.get().job
    (Path(HydraConfig.get().runtime.output_dir) / "pid").write_text(str(os.getpid()))
    if cfg.hold_from is not None and int(job.num) >= cfg.hold_from:
        while True:  # a test's signal ends it (short sleeps: a signal that another thread receives is
            time.sleep(0.01)  # handled when the main thread next runs bytecode, as in a training loop)
    return float(cfg.x)


if __name__ == "__main__":
    main()
