"""A short fault-injection campaign (the full one is `make campaign`): every
injector in every operating state it applies to, every cell or sensor
location once, plus nominal runs; nothing missed, nothing late, no false
trip."""
from host_tools import campaign


def test_short_campaign(tmp_path):
    jobs = campaign.plan_jobs(repeats=1, nominal=6, seed=11)
    outcomes = [campaign.run_job(j) for j in jobs]
    faults = [o for o in outcomes if o.kind != "nominal"]
    assert len(faults) >= 200
    assert {o.kind for o in faults} == set(campaign.PLAN)
    bad = [o for o in outcomes if o.result not in ("detected", "no-trip")]
    assert not bad, "\n".join(f"{o.kind} {o.state} loc {o.location}: {o.result} {o.detail} {o.reaction_ms} vs {o.allowed_ms}" for o in bad[:10])
    for o in faults:
        assert o.reaction_ms is not None and 0 <= o.reaction_ms <= o.allowed_ms + 1e-6
    # the balancing state really was balancing at the injection
    bal = [o for o in faults if o.state == "balancing"]
    assert sum(o.balancing_at_injection > 0 for o in bal) >= 0.9 * len(bal)
    print(campaign.table(outcomes))
