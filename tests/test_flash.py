"""`bmsctl flash` without a board: every example pack configuration passes
the firmware's validator and fits the board it is written for, a pack that
does not fit its board is refused naming the field, and the firmware builds
as .mpy for each board's architecture (the header says which)."""
import json
from pathlib import Path

import pytest

from host_tools.boardcfg import load_board_config
from host_tools.flash import ARCH, FlashError, build, check_pack_fits_board, validate_user_config
from tests.conftest import ROOT

BOARDS = ROOT / "board_configs"
PACKS = BOARDS / "packs"
# the pack written for each real board (README: the flash commands)
PAIRS = {"pico_bq76952": "lfp_16s_100ah", "picow_bq76952": "lfp_16s_100ah", "esp32_bq76952": "lfp_16s_100ah",
         "esp32_2x_ltc6813": "lfp_36s_150ah", "pico_adc_4s": "nmc_4s_demo"}
# mpy header byte 2, bits 2..7: the native architecture (py/persistentcode.h)
MPY_ARCH = {"armv6m": 4, "xtensawin": 10, "x64": 2}


@pytest.mark.parametrize("board,pack", sorted(PAIRS.items()))
def test_example_packs_validate_and_fit_their_board(board, pack):
    raw = validate_user_config(PACKS / f"{pack}.json")
    check_pack_fits_board(raw, load_board_config(BOARDS / f"{board}.json"), pack, board)


def test_every_real_board_has_an_example_pack():
    boards = {p.stem for p in BOARDS.glob("*.json") if p.stem not in ("schema", "sim")}
    assert boards == set(PAIRS)


def test_a_pack_that_does_not_fit_is_refused(tmp_path):
    raw = validate_user_config(PACKS / "lfp_36s_150ah.json")
    with pytest.raises(FlashError, match="config.cells: 36 cells, but .* measures 16"):
        check_pack_fits_board(raw, load_board_config(BOARDS / "pico_bq76952.json"), "pack", "pico_bq76952")


def test_bad_user_config_names_the_field(tmp_path):
    p = tmp_path / "pack.json"
    p.write_text(json.dumps({"cells": 16, "temps": 4, "capacity_mah": 100000, "chemistry": "LFX"}))
    with pytest.raises(FlashError, match="config.chemistry: unknown chemistry 'LFX'"):
        validate_user_config(p)
    p.write_text("{not json")
    with pytest.raises(FlashError, match="not valid JSON"):
        validate_user_config(p)


@pytest.mark.parametrize("mcu", sorted(ARCH))
def test_build_for_each_architecture(mcu, tmp_path):
    arch = ARCH[mcu]
    files = build(arch, tmp_path)
    mpys = [f for f in files if f.suffix == ".mpy"]
    assert Path("main.py") in files and len(mpys) > 20
    kernels = (tmp_path / "bms" / "kernels.mpy").read_bytes()  # viper code: native for the arch
    assert kernels[0:1] == b"M" and kernels[2] >> 2 == MPY_ARCH[arch], kernels[:4]
