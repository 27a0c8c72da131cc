"""Scenario files: load, validate and turn into plain values in SI units.

A scenario is a TOML file (see scenarios/default.toml). Every physical value
carries its unit. Validation names the file and the field of any error and
nothing of a rejected scenario is used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from host_tools import injectors, units
from host_tools.tomlfile import read_toml

CHEMISTRIES = ("LFP", "NMC")
FAULT_KINDS = tuple(injectors.KINDS)
ACTION_KINDS = ("enable_off", "enable_on", "grid_start", "grid_cancel")
STEP_KINDS = ("charge", "rest", "discharge", "household")
EXPECT_KINDS = ("no_fault", "fault", "reaction", "max", "min", "step_end", "detect", "detect_before",
                "no_charge_below", "overshoot", "pump_saving", "soc_error", "balance_cycles",
                "reserve_violations", "grid_end")
SIGNALS = ("cell_mv_max", "cell_mv_min", "temp_max_c", "temp_min_c", "current_a", "soc_min", "soc_max")
SIGNAL_DIM = {"cell_mv_max": "voltage", "cell_mv_min": "voltage", "temp_max_c": "temperature",
              "temp_min_c": "temperature", "current_a": "current", "soc_min": "fraction", "soc_max": "fraction"}


class ScenarioError(ValueError):
    pass


class _Section:
    """Reads one table of the scenario and reports errors by field path."""

    def __init__(self, where: str, data, capacity_ah: float | None = None):
        if not isinstance(data, dict):
            raise ScenarioError(f"{where}: expected a table, got {data!r}")
        self.where, self.data, self.cap = where, data, capacity_ah
        self.used: set[str] = set()

    def _path(self, key):
        return f"{self.where}.{key}" if self.where else key

    def has(self, key):
        return key in self.data

    def quantity(self, key, dim, default=None, lo=None, hi=None):
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise ScenarioError(f"{self._path(key)}: missing ({dim}, e.g. '{units.DIMENSIONS[dim][2]}')")
            text = default
        else:
            text = self.data[key]
        try:
            v = units.parse(text, dim, self.cap)
        except units.QuantityError as e:
            raise ScenarioError(f"{self._path(key)}: {e}") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            canon = units.DIMENSIONS[dim][1] or "(fraction)"
            raise ScenarioError(f"{self._path(key)}: {text!r} is out of range {lo:g}..{hi:g} {canon}")
        return v

    def integer(self, key, default=None, lo=None, hi=None):
        self.used.add(key)
        v = self.data.get(key, default)
        if v is None:
            raise ScenarioError(f"{self._path(key)}: missing (an integer)")
        if isinstance(v, bool) or not isinstance(v, int):
            raise ScenarioError(f"{self._path(key)}: expected an integer, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ScenarioError(f"{self._path(key)}: {v} is out of range {lo}..{hi}")
        return v

    def choice(self, key, choices, default=None):
        self.used.add(key)
        v = self.data.get(key, default)
        if v is None:
            raise ScenarioError(f"{self._path(key)}: missing (one of {', '.join(choices)})")
        if v not in choices:
            raise ScenarioError(f"{self._path(key)}: unknown value {v!r}; expected one of {', '.join(choices)}")
        return v

    def boolean(self, key, default):
        self.used.add(key)
        v = self.data.get(key, default)
        if not isinstance(v, bool):
            raise ScenarioError(f"{self._path(key)}: expected true or false, got {v!r}")
        return v

    def text(self, key, default=""):
        self.used.add(key)
        v = self.data.get(key, default)
        if not isinstance(v, str):
            raise ScenarioError(f"{self._path(key)}: expected a string, got {v!r}")
        return v

    def table(self, key):
        self.used.add(key)
        v = self.data.get(key, {})
        if not isinstance(v, dict):
            raise ScenarioError(f"{self._path(key)}: expected a table, got {v!r}")
        return v

    def done(self):
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise ScenarioError(f"{self._path(extra[0])}: unknown field")


@dataclass
class Pack:
    chemistry: str
    cells: int
    temps: int
    capacity_ah: float
    capacity_spread: float
    r0_ohm: float
    r0_spread: float
    r1_ohm: float
    tau_s: float
    initial_soc: float
    initial_soc_spread: float
    balance_ohm: float
    cell_heat_j_per_k: float
    initial_soc_range: float = 0.0
    capacity_range: float = 0.0
    coulombic_efficiency: float = 1.0
    sense_resistance: float = 0.0
    diffusion: bool = True  # the surface-SOC lag (plant.SURFACE_LAG); false: R0 + one RC only


@dataclass
class Sensors:
    cell_noise_v: float
    temp_noise_k: float
    current_noise_a: float
    current_offset_a: float = 0.0  # the current sensor reads this much high (+ = charge)
    current_gain_error: float = 0.0  # ... and this share high


@dataclass
class Estimate:
    """The firmware's starting belief, off from the plant's truth: the SOC
    and capacity in its state record (the capacity also in its
    configuration, as if set up for and learned on another pack)."""
    soc_error: float = 0.0  # saved SOC - true SOC (fraction, +-0.4)
    capacity_error: float = 0.0  # saved capacity / true capacity - 1 (+-0.3)


@dataclass
class Thermal:
    ambient_c: float
    initial_c: float
    daily_swing_c: float = 0.0
    peak_hour: float = 15.0


@dataclass
class Step:
    kind: str
    current_a: float = 0.0
    cv_v: float = 0.0
    termination_a: float = 0.0
    duration_s: float = 0.0
    timeout_s: float = 0.0
    # household: solar charging by day, home load, the pack in between
    solar_peak_a: float = 0.0
    solar_start_h: float = 7.0
    solar_end_h: float = 19.0
    solar_variation: float = 0.0  # each day's peak is lowered by up to this share (weather)
    load_day_a: float = 0.0
    load_night_a: float = 0.0
    start_h: float = 0.0  # time of day at the start of the step


@dataclass
class Fault:
    kind: str
    at_s: float
    cell: int = 0
    sensor: int = 0
    value_ohm: float = 0.0
    duration_s: float = 0.0
    # intermittent pattern (injectors.present): on for on_s every period_s,
    # count times (0: without end); 0 period: present throughout
    on_s: float = 0.0
    period_s: float = 0.0
    count: int = 0
    missing: float = 0.0  # flow_meter_missing: share of the pulses lost


@dataclass
class Action:
    kind: str
    at_s: float
    power_w: float = 0.0
    duration_s: float = 0.0


@dataclass
class Expect:
    kind: str
    index: int
    text: str
    fault: str = ""
    severity: str = ""
    signal: str = ""
    limit: float = 0.0
    within_s: float | None = None
    step: int = 0
    by: str = ""
    limit2: float = 0.0


@dataclass
class Scenario:
    path: str
    name: str
    description: str
    seed: int
    tick_s: float
    clock_start_ms: int
    pack: Pack
    sensors: Sensors
    thermal: Thermal
    firmware: dict
    profile: list[Step]
    faults: list[Fault]
    expects: list[Expect] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    firmware_soc: float | None = None  # SOC in the firmware's state record at boot (None: no record)
    estimate: Estimate = field(default_factory=Estimate)

    @property
    def duration_limit_s(self) -> float:
        total = 0.0
        for s in self.profile:
            total += s.duration_s if s.kind in ("rest", "household") else s.timeout_s
        return total


def load(path) -> Scenario:
    path = str(path)
    raw = read_toml(path, ScenarioError)
    try:
        return parse(raw, path)
    except ScenarioError as e:
        raise ScenarioError(f"{path}: {e}") from None


def parse(raw: dict, path: str = "<scenario>") -> Scenario:
    top = _Section("", raw)
    name = top.text("name", Path(path).stem)
    description = top.text("description")
    seed = top.integer("seed", 1, 0, 2**32 - 1)
    tick_s = top.quantity("tick", "time", "100 ms", 0.01, 1.0)
    clock_start_ms = top.integer("clock_start_ms", 0, 0, 2**30 - 1)
    firmware_soc = top.quantity("firmware_soc", "fraction", None, 0, 1) if top.has("firmware_soc") else None

    p = _Section("pack", top.table("pack"))
    chem = p.choice("chemistry", CHEMISTRIES)
    cap = p.quantity("capacity", "charge", None, 0.1, 2000)
    p.cap = cap
    pack = Pack(
        chemistry=chem,
        cells=p.integer("cells", None, 1, 256),
        temps=p.integer("temps", 4, 1, 64),
        capacity_ah=cap,
        capacity_spread=p.quantity("capacity_spread", "fraction", "1 %", 0, 0.2),
        r0_ohm=p.quantity("resistance", "resistance", "0.4 mohm", 1e-6, 1.0),
        r0_spread=p.quantity("resistance_spread", "fraction", "5 %", 0, 0.5),
        r1_ohm=p.quantity("rc_resistance", "resistance", "0.3 mohm", 0, 1.0),
        tau_s=p.quantity("rc_time_constant", "time", "60 s", 0.1, 3600),
        initial_soc=p.quantity("initial_soc", "fraction", None, 0, 1),
        initial_soc_spread=p.quantity("initial_soc_spread", "fraction", "0 %", 0, 0.5),
        balance_ohm=p.quantity("balance_resistor", "resistance", "33 ohm", 1, 10000),
        # EVE LF105-class cell: ~2 kg (assumed) x 1130 J/(kg K) (LFP, compiled
        # by batterydesign.net "Specific heat capacity of lithium ion cells").
        cell_heat_j_per_k=p.quantity("cell_heat_capacity", "heat_capacity", "2260 J/K", 1, 1e6),
        # max - min of the cells' initial SOC, evenly spread (0: use initial_soc_spread)
        initial_soc_range=p.quantity("initial_soc_range", "fraction", "0 %", 0, 0.5),
        # max - min of the cells' capacities, evenly spread around the rating (0: use capacity_spread)
        capacity_range=p.quantity("capacity_range", "fraction", "0 %", 0, 0.5),
        coulombic_efficiency=p.quantity("coulombic_efficiency", "fraction", "100 %", 0.9, 1.0),
        sense_resistance=p.quantity("sense_wire_resistance", "resistance", "0 ohm", 0, 100),
        # the cells' surface-SOC lag under current (solid diffusion), fitted
        # to electrochemical-model traces (host_tools/plant.py SURFACE_LAG)
        diffusion=p.boolean("diffusion", True),
    )
    if pack.temps > pack.cells:
        raise ScenarioError(f"pack.temps: {pack.temps} sensors for {pack.cells} cells (at most one per cell)")
    p.done()

    s = _Section("sensors", top.table("sensors"))
    sensors = Sensors(
        cell_noise_v=s.quantity("cell_noise", "voltage", "1 mV", 0, 0.1),
        temp_noise_k=s.quantity("temp_noise", "temperature_delta", "0.1 K", 0, 5),
        current_noise_a=s.quantity("current_noise", "current", "0.05 A", 0, 100),
        current_offset_a=s.quantity("current_offset", "current", "0 A", -10, 10),
        current_gain_error=s.quantity("current_gain_error", "fraction", "0 %", -0.1, 0.1),
    )
    s.done()

    es = _Section("estimate", top.table("estimate"))
    estimate = Estimate(soc_error=es.quantity("soc_error", "fraction", "0 %", -0.4, 0.4),
                        capacity_error=es.quantity("capacity_error", "fraction", "0 %", -0.3, 0.3))
    es.done()
    if estimate.soc_error or estimate.capacity_error:
        if firmware_soc is not None:
            raise ScenarioError("estimate: give either firmware_soc or [estimate], not both")
        firmware_soc = min(1.0, max(0.0, pack.initial_soc + estimate.soc_error))

    t = _Section("thermal", top.table("thermal"))
    amb = t.quantity("ambient", "temperature", None, -40, 70)
    thermal = Thermal(ambient_c=amb, initial_c=t.quantity("initial", "temperature", f"{amb} degC", -40, 80),
                      daily_swing_c=t.quantity("daily_swing", "temperature_delta", "0 K", 0, 40),
                      peak_hour=t.quantity("peak_time", "time", "15 h", 0, 86400) / 3600)
    t.done()

    firmware = top.table("firmware")
    if estimate.capacity_error and "capacity_mah" in firmware:
        raise ScenarioError("estimate.capacity_error: the firmware's capacity comes from it; drop firmware.capacity_mah")
    for k, v in firmware.items():
        if isinstance(v, float):
            raise ScenarioError(f"firmware.{k}: firmware settings are integers with the unit in the name, got {v!r}")

    steps_raw = raw.get("profile")
    top.used.add("profile")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise ScenarioError("profile: missing (a list of [[profile]] steps)")
    profile = []
    for i, sr in enumerate(steps_raw):
        ss = _Section(f"profile[{i}]", sr, cap)
        kind = ss.choice("step", STEP_KINDS)
        if kind == "charge":
            st = Step(kind, current_a=ss.quantity("current", "current", None, 0, 5000),
                      cv_v=ss.quantity("cv_voltage", "voltage", None, 1.0, 5.0),
                      termination_a=ss.quantity("termination", "current", "0.05 C", 0, 5000),
                      timeout_s=ss.quantity("timeout", "time", "10 h", 1, 30 * 86400))
        elif kind == "discharge":
            st = Step(kind, current_a=ss.quantity("current", "current", None, 0, 50000),
                      timeout_s=ss.quantity("timeout", "time", "10 h", 1, 30 * 86400))
        elif kind == "household":
            # time of day counts from the start of the run (00:00)
            st = Step(kind, duration_s=ss.quantity("duration", "time", None, 1, 30 * 86400),
                      cv_v=ss.quantity("cv_voltage", "voltage", None, 1.0, 5.0),
                      solar_peak_a=ss.quantity("solar_peak", "current", None, 0, 5000),
                      solar_start_h=ss.quantity("solar_start", "time", "7 h", 0, 86400) / 3600,
                      solar_end_h=ss.quantity("solar_end", "time", "19 h", 0, 86400) / 3600,
                      solar_variation=ss.quantity("solar_variation", "fraction", "0 %", 0, 1),
                      load_day_a=ss.quantity("load_day", "current", None, 0, 5000),
                      load_night_a=ss.quantity("load_night", "current", None, 0, 5000),
                      start_h=ss.quantity("start_time", "time", "0 h", 0, 86400) / 3600)
            if st.solar_end_h <= st.solar_start_h:
                raise ScenarioError(f"profile[{i}].solar_end: must be after solar_start")
        else:
            st = Step(kind, duration_s=ss.quantity("duration", "time", None, 0, 30 * 86400))
        ss.done()
        profile.append(st)

    faults = []
    top.used.add("fault")
    for i, fr in enumerate(raw.get("fault", [])):
        fs = _Section(f"fault[{i}]", fr, cap)
        f = Fault(fs.choice("kind", FAULT_KINDS), fs.quantity("at", "time", None, 0, 30 * 86400))
        if f.kind in injectors.CELL_KINDS:
            f.cell = fs.integer("cell", None, 0, pack.cells - 1)
        if f.kind in injectors.SENSOR_KINDS:
            f.sensor = fs.integer("sensor", None, 0, pack.temps - 1)
        if f.kind in ("load_short", "cell_internal_short") and fs.has("resistance"):
            f.value_ohm = fs.quantity("resistance", "resistance", None, 1e-4, 100)
        if f.kind == "coolant_leak" and fs.has("duration"):
            f.duration_s = fs.quantity("duration", "time", None, 1, 30 * 86400)
        if f.kind == "flow_meter_missing":
            f.missing = fs.quantity("missing", "fraction", None, 0.01, 1)
        _pattern(fs, f, f"fault[{i}]")
        fs.done()
        faults.append(f)

    actions = []
    top.used.add("action")
    for i, ar in enumerate(raw.get("action", [])):
        acs = _Section(f"action[{i}]", ar, cap)
        a = Action(acs.choice("kind", ACTION_KINDS), acs.quantity("at", "time", None, 0, 30 * 86400))
        if a.kind == "grid_start":
            # what the owner's command asks; the firmware checks it against its own limits
            a.power_w = acs.quantity("power", "power", None, 1, 1e5)
            a.duration_s = acs.quantity("duration", "time", None, 1, 86400)
        actions.append(a)
        acs.done()

    expects = []
    top.used.add("expect")
    for i, er in enumerate(raw.get("expect", [])):
        es = _Section(f"expect[{i}]", er, cap)
        kind = es.choice("kind", EXPECT_KINDS)
        e = Expect(kind, i, _describe(er))
        if kind == "no_fault":
            e.severity = es.choice("severity", ("warning", "fault", "critical"), "warning")
        elif kind == "fault":
            e.fault = es.text("fault")
        elif kind == "reaction":
            e.fault = es.text("fault")
            if es.has("within"):
                e.within_s = es.quantity("within", "time", None, 0, 3600)
        elif kind in ("max", "min"):
            # the run's max (or min) of a signal, compared with a bound
            e.signal = es.choice("signal", SIGNALS)
            if es.has("at_most") == es.has("at_least"):
                raise ScenarioError(f"expect[{i}]: give exactly one of at_most or at_least")
            e.by = "at_most" if es.has("at_most") else "at_least"
            e.limit = es.quantity(e.by, SIGNAL_DIM[e.signal])
        elif kind == "detect":
            # the fault raised within `within` of the first injection
            e.fault = es.text("fault")
            e.within_s = es.quantity("within", "time", None, 0, 86400)
        elif kind == "detect_before":
            # the fault raised before the hottest cell (true) reaches `temperature`
            e.fault = es.text("fault")
            e.limit = es.quantity("temperature", "temperature", None, -40, 100)
        elif kind == "no_charge_below":
            e.limit = es.quantity("temperature", "temperature", None, -40, 100)
        elif kind == "overshoot":
            e.limit = es.quantity("at_most", "temperature_delta", None, 0, 50)
        elif kind == "pump_saving":
            e.limit = es.quantity("at_least", "fraction", None, 0, 1)
        elif kind == "soc_error":
            # firmware SOC against the plant's true pack SOC, after the first full/empty synchronisation
            e.limit = es.quantity("rms_at_most", "fraction", None, 0, 1)
            e.limit2 = es.quantity("max_at_most", "fraction", None, 0, 1)
        elif kind == "balance_cycles":
            # the cell spread at the end of a charge step (true voltages) reaches `spread` by charge number `cycles`
            e.limit = es.quantity("spread", "voltage", None, 0, 1)
            e.step = es.integer("cycles", None, 1, 1000)
        elif kind == "reserve_violations":
            # ticks exporting to the grid while the plant's true pack SOC is below the reserve
            e.step = es.integer("at_most", 0, 0, 10**9)
        elif kind == "grid_end":
            # the n-th grid event (0-based) ended for this reason ("floor": at
            # either floor of the reserve, the counted SOC's or the cells' voltage)
            e.step = es.integer("event", None, 0, 100)
            e.by = es.choice("by", ("deadline", "reserve", "voltage", "floor", "cancelled", "blocked", "rejected"))
        elif kind == "step_end":
            e.step = es.integer("step", None, 0, len(profile) - 1)
            e.by = es.choice("by", ("firmware", "charger", "duration", "timeout"))
        es.done()
        expects.append(e)
    top.done()
    return Scenario(path, name, description, seed, tick_s, clock_start_ms, pack, sensors, thermal,
                    dict(firmware), profile, faults, expects, actions, firmware_soc, estimate)


def _pattern(fs: _Section, f: Fault, where: str) -> None:
    """The optional repeat pattern of an intermittent fault (on, period,
    count) and its overall duration."""
    keys = [k for k in ("on", "period", "count") if fs.has(k)] + (["duration"] if fs.has("duration") and f.kind != "coolant_leak" else [])
    if not keys:
        return
    if f.kind not in injectors.INTERMITTENT_KINDS:
        raise ScenarioError(f"{where}.{keys[0]}: kind {f.kind!r} cannot come and go; "
                            f"intermittent kinds: {', '.join(injectors.INTERMITTENT_KINDS)}")
    if fs.has("duration") and f.kind != "coolant_leak":
        f.duration_s = fs.quantity("duration", "time", None, 0.01, 30 * 86400)
    if fs.has("on") != fs.has("period"):
        raise ScenarioError(f"{where}.{'period' if fs.has('on') else 'on'}: missing (a repeat pattern needs both on and period)")
    if fs.has("period"):
        f.period_s = fs.quantity("period", "time", None, 0.02, 86400)
        f.on_s = fs.quantity("on", "time", None, 0.01, 86400)
        if f.on_s >= f.period_s:
            raise ScenarioError(f"{where}.on: {f.on_s:g} s must be shorter than the period {f.period_s:g} s")
        f.count = fs.integer("count", 0, 0, 10**6)
    elif fs.has("count"):
        raise ScenarioError(f"{where}.count: needs on and period")


def _describe(d) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) if isinstance(d, dict) else repr(d)
