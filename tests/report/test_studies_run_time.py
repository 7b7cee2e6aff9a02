"""docs/studies.md's run time of a study sums every invocation of its sweep (a resumed or extended sweep
runs several), from the sweep dir's sweep.yaml."""
from sweeplab.jobfiles import Invocation, write_invocations
from sweeplab.report.studies import run_time


def test_a_resumed_sweeps_time_is_every_invocations(tmp_path):
    write_invocations(tmp_path, [Invocation([["lr=0.1"]], started=1000.0, ended=1000.0 + 120),
                                 Invocation([["lr=0.1"]], started=5000.0, ended=5000.0 + 60),
                                 Invocation([["lr=0.1"]], started=9000.0)])  # killed: no end
    assert run_time(tmp_path) == "2 invocation(s) in 3.0 min"
