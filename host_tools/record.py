"""The record of a run, tick by tick: what the plant (the simulated pack or
a recorded trace) gave the firmware and what the firmware decided. The
loop (host_tools/loop.py) fills it, the report reads it; neither needs to
know which plant it was."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SEVERITY = {1: "warning", 2: "fault", 3: "critical"}
CONTACTOR_STATES = ("open", "precharge", "closing", "closed", "locked")

SERIES = ("t", "vmax", "vmin", "tmax", "tmin", "cur", "soc_min", "soc_max", "duty", "outputs", "ccl", "dcl",
          "balancing", "flow_lpm", "vmax_meas", "vmin_meas", "flow_pulses", "heater", "tspread", "soc_fw",
          "soc_true", "grid_a", "gap")


@dataclass
class Result:
    scenario: object  # the Scenario of a simulation; None for a replay
    hello: dict
    sim_s: float = 0.0
    wall_s: float = 0.0
    ticks: int = 0
    # what the report needs of the run, whatever the plant was
    name: str = ""
    description: str = ""
    tick_s: float = 0.1
    clock0_ms: int = 0
    expects: list = field(default_factory=list)
    ambient_c: float | None = None
    rated_capacity_ah: float = 0.0
    plant: str = "pack"  # "pack" (the ECM simulation) or "trace" (a recorded record)
    truth: str = "the plant's true pack SOC"  # what soc_true is, for the report
    # per tick series (lists, converted to numpy at the end)
    t: list = field(default_factory=list)
    vmax: list = field(default_factory=list)
    vmin: list = field(default_factory=list)
    tmax: list = field(default_factory=list)
    tmin: list = field(default_factory=list)
    cur: list = field(default_factory=list)
    soc_min: list = field(default_factory=list)
    soc_max: list = field(default_factory=list)
    duty: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    ccl: list = field(default_factory=list)
    can_limits: list = field(default_factory=list)  # (t, CCL A, DCL A, CVL V or None) as the inverter decoded them
    dcl: list = field(default_factory=list)
    balancing: list = field(default_factory=list)
    # decimated per-cell series for the plot
    cell_t: list = field(default_factory=list)
    cell_v: list = field(default_factory=list)
    cell_temp: list = field(default_factory=list)
    coolant: list = field(default_factory=list)
    ambient: list = field(default_factory=list)
    fault_events: list = field(default_factory=list)  # (t, name, "raised"/"cleared")
    contactor_events: list = field(default_factory=list)  # (t, state name)
    step_ends: list = field(default_factory=list)  # (step index, kind, t, by)
    injections: list = field(default_factory=list)  # (t, kind, cell, sensor)
    actions: list = field(default_factory=list)  # (t, kind)
    events: list = field(default_factory=list)  # (firmware ms, code, arg, value) from the event record
    flow_lpm: list = field(default_factory=list)
    heater: list = field(default_factory=list)
    tspread: list = field(default_factory=list)  # hottest - coldest cell (true), K
    vmax_meas: list = field(default_factory=list)  # what the firmware received (nominal scale), V
    vmin_meas: list = field(default_factory=list)
    flow_pulses: list = field(default_factory=list)  # the flow meter counter as sent
    soc_fw: list = field(default_factory=list)  # firmware SOC, fraction (nan while unknown)
    soc_true: list = field(default_factory=list)  # plant's true pack SOC (a trace: its reference SOC), fraction
    grid_a: list = field(default_factory=list)  # export current the pack delivered to the grid, A
    gap: list = field(default_factory=list)  # the plant had no reading for this tick (a trace's gap)
    grid_energy_wh: float = 0.0  # pack-side energy exported to the grid (plant)
    charge_ends: list = field(default_factory=list)  # (t, true cell spread in V, by) at the end of each charge step
    capacity_mah_fw: int = 0  # the firmware's last capacity estimate
    true_capacity_ah: float = 0.0  # the plant's usable pack capacity at the end
    grid_ends: list = field(default_factory=list)  # (t start, t end, reason, firmware mWh, plant Wh)
    pump_energy_wh: float = 0.0
    balance_energy_wh: float = 0.0
    heater_energy_wh: float = 0.0
    firmware_log: str = ""
    internal_error: bool = False
    firmware_config: dict = field(default_factory=dict)
    always_on: "Result | None" = None  # the same scenario with the pump at 100 % (pump_saving)
    sent: list | None = None  # per tick, the sensor frame the firmware got (loop.Frame), when asked
    fused: dict | None = None  # the compiled loop's tick counts (host_tools/fused.py), None: every tick in Python
    decisions: list | None = None  # per tick (t, outputs, contactor, ccl, dcl, soc, balance mask, duty, heater, faults) when asked

    def __post_init__(self):
        sc = self.scenario
        if sc is not None:
            self.name, self.description = sc.name, sc.description
            self.tick_s, self.clock0_ms = sc.tick_s, sc.clock_start_ms
            self.expects = sc.expects
            self.ambient_c = sc.thermal.ambient_c
            self.rated_capacity_ah = sc.pack.capacity_ah

    def arrays(self):
        for name in SERIES:
            setattr(self, name, np.asarray(getattr(self, name)))

    @property
    def rtf(self) -> float:
        return self.sim_s / self.wall_s if self.wall_s > 0 else float("inf")

    def faults_raised(self):
        return [(t, n) for t, n, what in self.fault_events if what == "raised"]

    def severity(self) -> dict[str, int]:
        """Each fault row's severity from the firmware's hello (1 warning,
        2 fault, 3 critical)."""
        return dict(zip(self.hello["faults"], self.hello["severity"]))
