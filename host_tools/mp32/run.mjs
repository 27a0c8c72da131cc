// Runs a MicroPython script on the official 32-bit build (the WebAssembly
// port, npm package @micropython/micropython-webassembly-pyscript) under
// Node.js: 31-bit small ints, 32-bit object sizes, a fixed-size GC heap.
//
//   node run.mjs [--heap BYTES] [--put HOSTDIR:MPDIR]... [--get MPFILE:HOSTFILE]...
//                [--step FUNCTION] SCRIPT.py [ARG]...
//
// Each --put copies a host directory tree into the port's in-memory
// filesystem (the firmware, a scenario's frames); SCRIPT runs as __main__
// with sys.argv = [SCRIPT, ARG...] and with MPDIRs on sys.path in order;
// with --step, FUNCTION (defined by it) is then called until it returns
// a false value. The GC heap starts at --heap bytes, but this build adds
// heap areas as it needs them (gc.mem_free() adds a constant ~128 MiB
// "max new split"): a MemoryError is only real under
// micropython.heap_lock(), and a script sees where a fixed heap would
// have run out by gc.mem_alloc() + gc.mem_free() growing (bench_fw.py).
// Each --get copies a file the script wrote back to the host afterwards.
// Its stdout/stderr go to ours; an uncaught exception exits 1, a
// SystemExit(n) exits n.
import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const argv = process.argv.slice(2);
let heap = 1024 * 1024;
const puts = [];
const gets = [];
let stepFn = null;
while (argv.length && argv[0].startsWith("--")) {
  const opt = argv.shift();
  const val = argv.shift();
  if (val === undefined) fail("run.mjs: " + opt + " needs a value");
  if (opt === "--heap") {
    heap = Number(val);
    if (!Number.isInteger(heap) || heap < 4096) fail("run.mjs: --heap wants a byte count >= 4096, got " + val);
  } else if (opt === "--put") {
    const i = val.lastIndexOf(":");
    if (i <= 0) fail("run.mjs: --put wants HOSTDIR:MPDIR, got " + val);
    puts.push([val.slice(0, i), val.slice(i + 1)]);
  } else if (opt === "--step") {
    stepFn = val;
  } else if (opt === "--get") {
    const i = val.indexOf(":");
    if (i <= 0) fail("run.mjs: --get wants MPFILE:HOSTFILE, got " + val);
    gets.push([val.slice(0, i), val.slice(i + 1)]);
  } else {
    fail("run.mjs: unknown option " + opt);
  }
}
if (!argv.length) fail("usage: node run.mjs [--heap BYTES] [--put HOSTDIR:MPDIR]... SCRIPT.py [ARG]...");
const script = argv[0];

function fail(msg) {
  process.stderr.write(msg + "\n");
  process.exit(2);
}

const out = (s) => process.stdout.write(s + "\n");
const err = (s) => process.stderr.write(s + "\n");
const mp = await loadMicroPython({ heapsize: heap, pystack: 8192, stdout: out, stderr: err });

function mkdirs(p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}

function copyTree(src, dst) {
  mkdirs(dst);
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    if (ent.name === "__pycache__") continue;
    const s = path.join(src, ent.name);
    const d = dst + "/" + ent.name;
    if (ent.isDirectory()) copyTree(s, d);
    else if (ent.isFile()) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}

for (const [src, dst] of puts) {
  if (!fs.existsSync(src)) fail("run.mjs: --put " + src + ": no such directory");
  copyTree(src, dst);
}
mkdirs("/tmp");

const setup = [
  "import sys",
  "sys.argv[:] = " + JSON.stringify(argv),
  "sys.path[:0] = " + JSON.stringify(puts.map((p) => p[1])),
  "sys.path.append('')",
  "del sys",
].join("\n");
// The script runs as the port's __main__. A script that locks the heap
// catches its own MemoryError and unlocks before it lets an error out: the
// port hangs converting an exception raised with the heap still locked
// (callers run this with a time limit).
const code = fs.readFileSync(script, "utf8");
let rc = 0;
try {
  mp.runPython(setup);
  mp.runPython(code);
  if (stepFn) {
    // This build's gc.collect() frees nothing while one runPython() is
    // running (measured: 1,000 x 1 KB garbage stays allocated); called from
    // here, between steps, it does. So a long run is a script function
    // called once per cycle until it returns a false value.
    const fn = mp.globals.get(stepFn);
    if (!fn) fail("run.mjs: --step " + stepFn + ": the script defines no such function");
    while (fn()) { /* next cycle */ }
  }
} catch (e) {
  const text = String(e && e.message ? e.message : e);
  const m = /SystemExit: (\d+)\s*$/.exec(text.trim());
  if (m) rc = Number(m[1]);
  else if (/SystemExit\s*$/.test(text.trim())) rc = 0;
  else {
    process.stderr.write(text.endsWith("\n") ? text : text + "\n");
    rc = 1;
  }
}
for (const [src, dst] of gets) {
  try {
    fs.writeFileSync(dst, mp.FS.readFile(src));
  } catch (e) {
    process.stderr.write("run.mjs: --get " + src + ": not written by the script\n");
    if (!rc) rc = 1;
  }
}
process.exitCode = rc;
