// A Node.js process for the live leak tests: keeps `--leak` MiB/min of Buffers forever
// (a leak), fills a `--warm` MiB cache over `--warm-s` seconds and then keeps it (a
// warm-up), holds `--base` MiB from the start, and makes `--churn` MiB/s of short-lived
// garbage (the GC sawtooth). `--marker` only tags the command line.
"use strict";
const options = { base: 0, leak: 0, warm: 0, "warm-s": 1, churn: 0 };
for (let i = 2; i < process.argv.length - 1; i += 2) {
  const name = process.argv[i].replace(/^--/, "");
  if (name in options) options[name] = Number(process.argv[i + 1]);
}
const MIB = 1 << 20;
const CHUNK = 64 * 1024;
const kept = [];
const touched = (bytes) => Buffer.allocUnsafe(bytes).fill(1);
for (let i = 0; i < options.base * MIB; i += CHUNK) kept.push(touched(CHUNK));
const start = Date.now();
let leaked = 0;
let cached = 0;
setInterval(() => {
  const seconds = (Date.now() - start) / 1000;
  const leakDue = (options.leak * MIB * seconds) / 60;
  for (; leaked + CHUNK <= leakDue; leaked += CHUNK) kept.push(touched(CHUNK));
  const warmDue = options.warm * MIB * Math.min(1, seconds / options["warm-s"]);
  for (; cached + CHUNK <= warmDue; cached += CHUNK) kept.push(touched(CHUNK));
  // Garbage on the V8 heap: objects that die young.
  let garbage = [];
  for (let made = 0; made < (options.churn * MIB) / 10; made += 1024) {
    garbage.push({ filler: "x".repeat(1000) + made });
  }
  garbage = null;
}, 100);
