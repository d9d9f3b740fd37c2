"""A Python process for the live leak tests: keeps `--leak` MiB/min of bytes forever (a
leak), fills a `--warm` MiB cache over `--warm-s` seconds and then keeps it (a warm-up),
holds `--base` MiB from the start, and makes `--churn` MiB/s of short-lived garbage.
`--marker` only tags the command line."""
import sys
import time

options = {"base": 0.0, "leak": 0.0, "warm": 0.0, "warm-s": 1.0, "churn": 0.0}
for name, value in zip(sys.argv[1::2], sys.argv[2::2]):
    if name[2:] in options:
        options[name[2:]] = float(value)
MIB = 1 << 20
CHUNK = 64 * 1024
kept = [b"\x01" * CHUNK for _ in range(int(options["base"] * MIB) // CHUNK)]
start = time.monotonic()
leaked = cached = 0
while True:
    seconds = time.monotonic() - start
    leak_due = options["leak"] * MIB * seconds / 60
    while leaked + CHUNK <= leak_due:
        kept.append(b"\x01" * CHUNK)
        leaked += CHUNK
    warm_due = options["warm"] * MIB * min(1.0, seconds / options["warm-s"])
    while cached + CHUNK <= warm_due:
        kept.append(b"\x02" * CHUNK)
        cached += CHUNK
    garbage = [b"\x03" * CHUNK for _ in range(int(options["churn"] * MIB / 10) // CHUNK)]
    del garbage
    time.sleep(0.1)
