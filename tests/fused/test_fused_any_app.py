"""The fused launcher runs any Hydra app's jobs as the basic launcher does, and only sweeplab's own task
loads torch: a user's app that never uses torch does not pay its import in the sweep."""
import subprocess
import sys
import textwrap

APP = '''
import sys

import hydra


@hydra.main(version_base="1.3", config_path=None)
def main(cfg):
    print(f"job {cfg.x}: torch loaded: {'torch' in sys.modules}")


if __name__ == "__main__":
    main()
'''


def test_another_apps_jobs_run_one_at_a_time_without_torch(tmp_path):
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    result = subprocess.run(
        [sys.executable, "app.py", "-m", "hydra/launcher=fused", "+x=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = [line for line in result.stdout.splitlines() if line.startswith("job ")]
    assert jobs == ["job 1: torch loaded: False", "job 2: torch loaded: False"], result.stdout
    assert "is not sweeplab's task: running 2 jobs one at a time" in result.stdout + result.stderr
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]
