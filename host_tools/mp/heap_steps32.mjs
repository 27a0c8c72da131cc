// 32-bit heap figures of the firmware on the official WebAssembly build of
// MicroPython (@micropython/micropython-webassembly-pyscript, Node.js),
// from bytecode .mpy (mpy-cross without -march; kernels.py, viper, left out:
// the harness runs the plain twins).
//   node heap_steps32.mjs FW_MPY_DIR HARNESS_MPY CELLS TICKS
// FW_MPY_DIR: bms/**.mpy from `mpy-cross` (no -march); HARNESS_MPY:
// host_tools/mp/heap_by_module.py compiled the same way. The package is
// resolved from the repository's node_modules (issue 14's 32-bit runner
// installs it there, pinned); pending that, copy this file next to a
// node_modules that holds @micropython/micropython-webassembly-pyscript@1.27.0.
// That port collects garbage only between top-level calls (inside one it
// grows its heap instead), so every step is its own runPython call and
// "live" is gc.mem_alloc() after a top-level gc.collect(): exact live
// bytes, not a smallest heap (which it cannot show: its heap grows).
// Prints one JSON object: base/harness bytes, each module's import (in
// heap_by_module.MODULES order), boot data, live after boot and after the
// ticks, each boot-only/on-demand module's own bytes on top of the running
// firmware, and the live bytes while `config set` holds its second
// configuration (schema and console_config loaded).
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "fs"; import path from "path";
const [fwDir, harness, cells, ticks] = process.argv.slice(2);
let out = "";
const mp = await loadMicroPython({ heapsize: 1 << 20, stdout: (l) => { out += l + "\n"; } });
const FS = mp.FS;
function copyTree(src, dst) { for (const e of fs.readdirSync(src, { withFileTypes: true })) { const s = path.join(src, e.name), d = dst + "/" + e.name;
  if (e.isDirectory()) { try { FS.mkdir(d); } catch (x) {} copyTree(s, d); } else FS.writeFile(d, fs.readFileSync(s)); } }
for (const d of ["/fw", "/work", "/h"]) { try { FS.mkdir(d); } catch (x) {} }
copyTree(fwDir, "/fw");
FS.writeFile("/h/heap_by_module.mpy", fs.readFileSync(harness));
const py = (s) => { out = ""; mp.runPython(s); return out; };
const live = () => { py("gc.collect()"); return parseInt(py("print(gc.mem_alloc())")); };
py("import gc, sys");
const l0 = live();
py(`sys.argv[:] = ["h", "/fw", "/work", "${cells}", "steps"]\nsys.path.insert(0, "/h")\nimport heap_by_module as H`);
const lh = live();
const res = { base: l0, harness: lh - l0, modules: [], data: [] };
const names = JSON.parse(py("import json\nprint(json.dumps(H.MODULES))"));
let prev = lh, worst = 0, worstAt = "";
for (const n of names) {
  const a = parseInt(py(`__import__("${n}")\nprint(gc.mem_alloc())`));
  if (a > worst) { worst = a; worstAt = "import " + n; }
  const l = live(); res.modules.push([n, l - prev]); prev = l;
}
res.code = prev - lh;
const a = parseInt(py("H.start()\nprint(gc.mem_alloc())"));
if (a > worst) { worst = a; worstAt = "boot"; }
const lb = live(); res.boot_data = lb - prev;
let peakLive = lb;
for (let i = 0; i < parseInt(ticks); i++) {
  const t = py("e = H.tick()\nprint(gc.mem_alloc(), e)").trim().split(" ");
  const m = parseInt(t[0]);
  if (t[1] !== "0" && t[1] !== "False") { res.internal_error = t[1]; }
  if (m > worst) { worst = m; worstAt = "tick " + i; }
  if (i % 100 == 99) { const l = live(); if (l > peakLive) peakLive = l; }
}
const le = live();
res.after_boot_live = lb; res.end_live = le; res.peak_live = peakLive;
res.worst_in_call = worst; res.worst_at = worstAt;
try { py("import bms.console_config, bms.config_schema\nfrom bms.config import Config\nc2 = Config(H.user_config())"); }
catch (e) { py("from bms.config import Config\nc2 = Config(H.user_config())"); }  // before the split: all resident
res.config_set_live = live();
py("c2 = None\nimport sys\nfor m in ('bms.console_config', 'bms.config_schema', 'bms.chemistry', 'bms.console_cmds'):\n    sys.modules.pop(m, None)\n    try:\n        delattr(sys.modules['bms'], m[4:])\n    except Exception:\n        pass");
res.transient = [];
for (const n of ["bms.chemistry", "bms.config_schema", "bms.config_text", "bms.console_cmds", "bms.console_config", "bms.board", "bms.drivers.bq76952_setup"]) {
  const a = live();
  try { py(`__import__("${n}")`); } catch (e) { res.transient.push([n, "import failed: " + String(e).slice(0, 80)]); continue; }
  const b = live();
  res.transient.push([n, b - a]);
  py(`import sys\nsys.modules.pop("${n}", None)`);
}

res.console = py("p = H.G['objs'][4]\nprint(p.oks, p.errs)").trim();
console.log(JSON.stringify(res));
