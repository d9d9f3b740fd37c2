#!/usr/bin/env python3
"""Builds the small seed corpus in fuzz/corpus/<target>/ from the repository's fixtures,
the shipped config, real files of this host's /proc and cgroupfs (no command lines:
they may hold secrets) and hand-made hostile cases. Files are named by their SHA-1, as
libFuzzer names what it adds. Run from the repository root; rerunning adds nothing twice."""

import glob, hashlib, os, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def read(path, limit=64 * 1024):
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


def fixtures(pattern):
    return sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", pattern), recursive=True))


def live(pattern, n):
    out = []
    for path in sorted(glob.glob(pattern))[:n]:
        data = read(path)
        if data:
            out.append(data)
    return out


for name in ["stat", "status", "cgroup", "cmdline"]:
    target = "proc_" + name
    for path in fixtures(f"proc/*/{name}"):
        add(target, read(path))
    if name != "cmdline":
        for data in live(f"/proc/[0-9]*/{name}", 12):
            add(target, data)

add("proc_stat", b"42 (a) b) (c) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 123 0 99\n")
add("proc_stat", b"42 (\n\x1b[2J\xff) R 1 1 1 0 -1 2097152 " + b"0 " * 40 + b"\n")
add("proc_cmdline", b"java\0-Xmx4g\0-Dpassword=hunter2\0--token\0abc\0\x1b]0;title\x07\0\xff\xfe\0")
add("proc_cmdline", b"python3\0-c\0print('a\\nb')\0--api-key=sk-123\0")
add("proc_cgroup", "0::/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n")
add("proc_cgroup", "12:memory:/kubepods/burstable/pod1234-5678/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n0::/\n")
add("proc_cgroup", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/podman-1234.scope/container\n")
add("proc_cgroup", "0::/lxc.payload.c1/init.scope\n1:name=systemd:/machine.slice/systemd-nspawn@x.service\n")

for path in fixtures("proc/meminfo") + fixtures("proc/pressure/memory") + fixtures("proc/*/oom_score_adj"):
    add("proc_small", read(path))
for path in ["/proc/meminfo", "/proc/pressure/memory", "/proc/self/oom_score_adj"]:
    data = read(path)
    if data:
        add("proc_small", data)

V2 = ["memory.current", "memory.stat", "memory.pressure", "memory.max", "memory.high", "memory.events"]
V1 = ["memory.usage_in_bytes", "memory.limit_in_bytes", "memory.soft_limit_in_bytes",
      "memory.stat", "memory.oom_control", "memory.pressure"]


def cgroup_input(mode, directory, names):
    parts = [read(os.path.join(directory, n)) or b"" for n in names]
    return bytes([mode]) + b"\0".join(parts)


for directory in sorted({os.path.dirname(p) for p in fixtures("cgroup/**/memory.stat")}):
    v1 = os.path.exists(os.path.join(directory, "memory.usage_in_bytes"))
    add("cgroup_files", cgroup_input(1 if v1 else 0, directory, V1 if v1 else V2))
for directory in sorted(glob.glob("/sys/fs/cgroup/memory/*/"))[:4] + ["/sys/fs/cgroup/memory"]:
    if os.path.exists(os.path.join(directory, "memory.usage_in_bytes")):
        add("cgroup_files", cgroup_input(1, directory, V1))
for directory in sorted(glob.glob("/sys/fs/cgroup/*/"))[:4]:
    if os.path.exists(os.path.join(directory, "memory.current")):
        add("cgroup_files", cgroup_input(0, directory, V2))

header = lambda kind, tgid: struct.pack("<IIQ", kind, tgid, 123456789)
add("ring_record", header(1, 42) + struct.pack("<IIq", 1, 0, 2560))
add("ring_record", header(2, 42) + struct.pack("<IIQQQQiI16s", 0, 41, 1 << 20, 4096, 512, 0, -1000, 0, b"hog\0"))
add("ring_record", header(3, 43) + struct.pack("<IIQ", 42, 0, 987654321))
add("ring_record", header(4, 43) + struct.pack("<IIQ", 0, 0, 0))
add("ring_record", header(5, 43) + struct.pack("<IIQ", 0, 0, 0))
add("ring_record", header(9, 1))

add("kmsg", "6,1460,8915900093,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
    "mems_allowed=0,oom_memcg=/docker/abc,task_memcg=/docker/abc,task=memhog,pid=2394,uid=0\n"
    "3,1461,8915900163,-;Memory cgroup out of memory: Killed process 2394 (memhog) total-vm:52192kB, "
    "anon-rss:48896kB, file-rss:1784kB, shmem-rss:0kB, UID:0 pgtables:144kB oom_score_adj:0\n")
add("kmsg", "3,2,1,-;Out of memory: Killed process 77 (ja\x0ava) total-vm:9000kB, anon-rss:8000kB, "
    "file-rss:0kB, shmem-rss:12kB, UID:1000 pgtables:20kB oom_score_adj:-500\n SUBSYSTEM=x\n")

add("config", read(os.path.join(ROOT, "config", "guardian.toml")))
add("config", '[daemon]\nscan_interval = "100ms"\n[[rule]]\nname = "a"\nthreshold = "10%"\n'
               'match = { comm = ["x"], cmdline = "^java .*", user = ["0"], cgroup = "/docker/*" }\n'
               '[[orphan_rule]]\nname = "b"\nolder_than = "1h"\n')
add("config", '[trends]\nslow_window = "65m"\n[safety]\nmax_kills = 0\n')

log = os.environ.get("GUARDIAN_SEED_KILL_LOG")
if log and read(log):
    data = read(log)
    add("kill_log", data)
    lines = data.splitlines(keepends=True)
    add("kill_log", b"".join(lines[:1]))
    add("kill_log", data[: len(data) // 2])
    add("kill_log", data.replace(b'"seq":1', b'"seq":7', 1))
add("kill_log", b'{"v":1,"seq":1}\n\xff\xfe\n{"kind":"intent"\n')

for path in fixtures("traces/*.csv"):
    text = read(path)
    if text and text.startswith(b"t_s"):
        add("trend_csv", b"\n".join(text.splitlines()[:300]) + b"\n")
add("trend_csv", "t_s,rss_bytes\n0,1\n1e308,18446744073709551615\nNaN,1\n-5,3\n")

for data in ["java -Dpassword=hunter2 -jar app.jar",
             "curl -H 'Authorization: Bearer abc.def' https://user:pass@example.com/x?token=1",
             "mysql -uroot -psecret db", "env AWS_SECRET_ACCESS_KEY=x PGPASSWORD=y run",
             "app --api-key sk-123 --token=\x1b[31mred\x1b[0m", "a\0--password\0b\0--x=1"]:
    add("redaction", data)

for target in sorted(os.listdir(CORPUS)):
    print(target, len(os.listdir(os.path.join(CORPUS, target))))
