"""Runs on Dask (host_tools/cluster.py): a worker that dies loses only its
runs, which are run again elsewhere or reported; none is dropped. Then a
small campaign through the LocalCluster writes every run to the CSV."""
import csv
import os
import sys

import cloudpickle

from host_tools import campaign, cluster

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _job(item):
    kind, marker = item
    if kind == "die_once" and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(9)  # the worker process dies under this run
    if kind == "die_always":
        os._exit(9)
    if kind == "raise":
        raise RuntimeError("bad run " + marker)
    return (kind, os.getpid())


def test_dead_worker_runs_are_rerun_or_reported(tmp_path):
    jobs = [("ok", "a"), ("die_once", str(tmp_path / "m1")), ("ok", "b")]
    with cluster.client(workers=2) as c:
        m = cluster.run_all(c, _job, jobs, "test", retries=1)
        assert m.workers == 2 and not m.failed
        assert [r[0] for r in m.results] == ["ok", "die_once", "ok"]
        # killed once, then finished on a restarted or the other worker
        assert (tmp_path / "m1").exists()
        # a run that kills every worker it lands on, and one that always raises
        jobs = [("die_always", "x"), ("raise", "r1"), ("ok", "c")]
        m = cluster.run_all(c, _job, jobs, "test", retries=1)
    failed = {job: why for job, why in m.failed}
    assert "KilledWorker" in failed[("die_always", "x")]
    assert "RuntimeError: bad run r1" in failed[("raise", "r1")]
    # none dropped: every run has a result or is reported
    for job, r in zip(jobs, m.results):
        assert (r is None) == (job in failed)
    assert m.results[0] is None and m.results[1] is None


def test_campaign_on_a_local_cluster(tmp_path, capsys):
    out = tmp_path / "c.csv"
    rc = campaign.main(0, 2, out, jobs_n=1, seed=4)
    assert rc == 0
    rows = list(csv.DictReader(open(out)))
    assert [int(r["run"]) for r in rows] == [0, 1]
    assert {r["result"] for r in rows} == {"no-trip"}
    # the same seeds give the same runs as without the cluster
    jobs = campaign.plan_jobs(0, 2, 4)
    assert [r["seed"] for r in rows] == [str(j.seed) for j in jobs]
    direct = campaign.run_job(jobs[0])
    assert rows[0]["detail"] == direct.detail and rows[0]["result"] == direct.result
    assert "2 runs on 1 workers" in capsys.readouterr().out


def test_a_run_without_a_worker_core_takes_the_least_pinned_one():
    # a soak beside a fleet: the lock-step pair of a run given no core must
    # not land on the core others are pinned to while another core idles
    import subprocess
    from host_tools.sim import least_pinned_cpu
    cpus = sorted(os.sched_getaffinity(0))
    assert least_pinned_cpu(cpus) in cpus
    if len(cpus) < 2:
        return
    busy = cpus[0]
    sleepers = [subprocess.Popen(["sleep", "30"], preexec_fn=lambda: os.sched_setaffinity(0, {busy}))
                for _ in range(20)]
    try:
        assert least_pinned_cpu(cpus) != busy
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
