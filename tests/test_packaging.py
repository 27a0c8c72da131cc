"""firmware/manifest.py (freezing into a board image) and
firmware/package.json (`mpremote mip install`) name every firmware file
and nothing else (no host file)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from host_tools.firmware import FIRMWARE, ROOT


def firmware_files() -> set[str]:
    return {p.relative_to(FIRMWARE).as_posix() for p in (FIRMWARE / "bms").rglob("*.py")} | {"main.py"}


def manifest_files(path: Path = FIRMWARE / "manifest.py") -> tuple[set[str], list[str]]:
    """The files the manifest freezes, as MicroPython's manifestfile.py
    resolves package()/module() (relative to the manifest's folder), and
    the includes (the port's own manifest)."""
    files: set[str] = set()
    includes: list[str] = []
    base = path.parent

    def package(name, files_=None, base_path=".", opt=None):
        root = (base / base_path).resolve()
        for p in (root / name).rglob("*.py"):
            files.add(p.resolve().relative_to(ROOT).as_posix())

    def module(name, base_path=".", opt=None):
        files.add((base / base_path / name).resolve().relative_to(ROOT).as_posix())

    def include(p):
        includes.append(p)

    def freeze(*a, **k):
        raise AssertionError("use package()/module(), not freeze()")

    exec(compile(path.read_text(), str(path), "exec"),
         {"package": package, "module": module, "include": include, "freeze": freeze, "require": None})
    return files, includes


def test_manifest_freezes_every_firmware_file_and_no_host_file():
    files, includes = manifest_files()
    assert files == {"firmware/" + f for f in firmware_files()}
    assert not [f for f in files if not f.startswith("firmware/")]
    assert includes == ["$(PORT_DIR)/boards/manifest.py"]  # the port's own modules stay


def test_manifest_check_can_fail(tmp_path):
    # a manifest that also freezes host code must not pass
    m = FIRMWARE / "manifest.py"
    bad = m.read_text() + '\npackage("host_tools", base_path="..")\n'
    p = FIRMWARE / "_bad_manifest_test.py"
    try:
        p.write_text(bad)
        files, _ = manifest_files(p)
    finally:
        p.unlink()
    assert any(f.startswith("host_tools/") for f in files)


def test_package_json_for_mip_lists_every_firmware_file():
    pkg = json.loads((FIRMWARE / "package.json").read_text())
    urls = pkg["urls"]
    assert {dst for dst, _ in urls} == firmware_files()
    # relative sources: mip fetches them beside package.json in the repository
    assert all(dst == src for dst, src in urls)
    version = re.search(r'VERSION = "([^"]+)"', (FIRMWARE / "bms" / "__init__.py").read_text()).group(1)
    assert pkg["version"] == version
