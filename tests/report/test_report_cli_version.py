"""sweeplab --version prints the installed package's version."""
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

SWEEPLAB = Path(sys.executable).parent / "sweeplab"  # the console script `pip install -e .` makes


def test_version_prints_the_installed_packages_version():
    done = subprocess.run([str(SWEEPLAB), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sweeplab {version('sweeplab')}"
