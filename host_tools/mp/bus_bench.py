# Bus and conversion time per tick of each front end, on the chip models
# (MicroPython; `bmsctl bench` runs it). The models count what crosses the
# bus (transactions, bytes) and the virtual clock adds up every wait the
# driver makes (conversion times, wake-ups, busy polls, mux settling);
# the bus time follows from the counts at the board config's bus clock.
#   micropython bus_bench.py FIRMWARE_DIR CHIPS_DIR BOARD_CONFIGS
# Prints one JSON line: a list of rows.
import sys
import json
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
BOARDS = sys.argv[3]

from bms import kernels  # noqa: E402
from bms.config import Config  # noqa: E402
from bms.app import App  # noqa: E402
from bms.board import build_hal  # noqa: E402
from chips.bench import Bench  # noqa: E402
from chips.bq76952 import BQ76952Model  # noqa: E402
from chips.ltc681x import LtcChain  # noqa: E402
from chips.afe_sim import adapt  # noqa: E402

ADC_US_PER_SAMPLE = 2  # RP2040 ADC: 500 kS/s (RP2040 datasheet, ADC chapter)


def load(name):
    with open(BOARDS + "/" + name) as f:
        return json.load(f)


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def run(label, board_name, afe, cells, temps, ticks=120):
    bd = load(board_name)
    cfg = Config({"cells": cells, "temps": temps, "capacity_mah": 100000, "chemistry": "LFP"})
    bd = adapt(bd, afe, cfg) if afe != "bq76952" else bd
    bd["afe"]["type"] = afe if afe != "direct_adc" else "direct_adc"
    b = Bench()
    a = bd["afe"]
    chip = None
    freq = 0
    if afe == "bq76952":
        chip = BQ76952Model(8, b.clock, a.get("shunt_uohm", 1000))
        b.i2c(a["i2c"]["id"]).attach(8, chip)
        chip.set_cells_mv([3300] * cells + [0] * (16 - cells))
        chip.set_stack(330 * cells // 10, 330 * cells // 10, 330 * cells // 10, 0)
        freq = a["i2c"].get("freq", 100000)
        bus = b.i2c(a["i2c"]["id"])
    elif afe.startswith("ltc"):
        chip = LtcChain(b.clock, a["modules"], 12 if afe == "ltc6811" else 18)
        b.spi(a["spi"]["id"]).chain = chip
        b.pin(a["cs"]).listener = chip.cs
        freq = a["spi"].get("baudrate", 1000000)
        bus = b.spi(a["spi"]["id"])
    else:
        for p in range(64):
            b.adc(p).uv = 1000000
        adc = b.adc(a["adc_pin"])
        adc.source = lambda: 1000000
    hal = build_hal(bd, cfg, kernels, b.machine, b.clock)
    app = App(cfg, hal, kernels)
    rows = []
    now = 0
    for k in range(ticks + 1):
        if chip is not None and afe.startswith("ltc"):
            for d in chip.dev:
                d.cell_in = [33000 + (k + i) % 7 for i in range(d.c)]
        elif chip is not None:
            chip.set_cells_mv([3300 + (k + i) % 5 for i in range(cells)] + [0] * (16 - cells))
        if chip is not None:
            t0, n0 = b.clock.us, bus.bytes
            tr0 = bus.transactions if afe == "bq76952" else 0
            rd0 = bus.reads if afe == "bq76952" else 0
        else:
            t0 = b.clock.us
            s0 = sum(x.reads for x in b.adcs.values())
        app.tick(now)
        wait = b.clock.us - t0
        if afe == "bq76952":
            tr, rd, nb = bus.transactions - tr0, bus.reads - rd0, bus.bytes - n0
            wire = bus.bus_us(freq, tr, rd, nb)
        elif chip is not None:
            tr, nb = 0, bus.bytes - n0
            wire = nb * 8 * 1000000 // freq
        else:
            nb = sum(x.reads for x in b.adcs.values()) - s0
            tr = nb
            wire = nb * ADC_US_PER_SAMPLE
        rows.append((wire, wait, tr, nb))
        b.clock.sleep_ms(100)
        now += 100
    steady = rows[2:]
    tot = [w + c for w, c, _, _ in steady]
    first = rows[0]
    return {"label": label, "cells": cells, "bus_hz": freq, "first_us": first[0] + first[1],
            "first_bus_us": first[0], "median_bus_us": median([r[0] for r in steady]),
            "median_wait_us": median([r[1] for r in steady]), "median_total_us": median(tot), "max_total_us": max(tot),
            "median_bytes": median([r[3] for r in steady]), "median_transactions": median([r[2] for r in steady]),
            "valid_scans": app.state.valid_scans}


OUT = [
    run("BQ76952 (pico_bq76952, I2C)", "pico_bq76952.json", "bq76952", 16, 4),
    run("2x LTC6813 (esp32_2x_ltc6813, isoSPI)", "esp32_2x_ltc6813.json", "ltc6813", 36, 8),
    run("LTC6813 chain, 16 x 16 = 256 cells (config limit)", "esp32_2x_ltc6813.json", "ltc6813", 256, 8),
    run("LTC6811 chain, 16 x 12 = 192 cells (module limit)", "esp32_2x_ltc6813.json", "ltc6811", 192, 8),
    run("direct ADC + 32:1 mux, 16S (pico_adc_4s wiring)", "pico_adc_4s.json", "direct_adc", 16, 4),
    run("direct ADC, 4S (pico_adc_4s)", "pico_adc_4s.json", "direct_adc", 4, 2),
]
print(json.dumps(OUT))
