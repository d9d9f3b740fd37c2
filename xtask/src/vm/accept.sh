#!/bin/sh
# Acceptance suite run inside each VM of `cargo xtask vm` by guardian-vm-accept.service
# (the rootfs enables it; it mounts the payload disk, labelled guardian-payload, on
# /mnt/payload).
# Installs the guardian's .deb from the payload disk and checks
# it under systemd with pure cgroup v2 on this kernel. Every result is one line on the
# serial console, `GUARDIAN-VM <key> <value...>`, read by the host; `GUARDIAN-VM done`
# is last, then the machine powers off. Nothing here is timed against a limit except
# waits, which fail with a message rather than hang.

API=http://127.0.0.1:9471
say() { echo "GUARDIAN-VM $*" > /dev/ttyS0; }
check() { # check NAME COMMAND...: one pass/fail line per check, and its status
    name=$1
    shift
    if "$@"; then say "check $name pass"; else say "check $name fail" && return 1; fi
}
wait_for() { # wait_for SECONDS COMMAND...: true once COMMAND succeeds
    deadline=$(($(date +%s) + $1))
    shift
    until "$@"; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}
api() { curl -fsS --max-time 10 "$API$1"; }
finish() {
    journalctl -u guardian --no-pager -o cat 2>/dev/null | tail -n 40 | sed 's/^/GUARDIAN-VM journal /' > /dev/ttyS0
    say done
    systemctl poweroff --no-block
    exit 0
}

say kernel "$(uname -r)"
say boot_s "$(cut -d' ' -f1 /proc/uptime)"
say cgroup "$(stat -fc %T /sys/fs/cgroup)"
if [ -e /sys/kernel/btf/vmlinux ]; then say btf yes; else say btf no; fi

started=$(date +%s.%N)
# postinst creates /var/lib/guardian, enables and starts the unit (Type=notify: active
# means READY=1 was sent).
check install dpkg -i /mnt/payload/guardian.deb > /dev/null
is_active() { [ "$(systemctl is-active guardian)" = active ]; }
# Nothing else can pass without the service: stop here, with its journal.
check ready wait_for 120 is_active || finish
say ready_s "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
check api wait_for 30 api /api/v1/status -o /dev/null
status=$(api /api/v1/status)
say source "$(printf %s "$status" | jq -r '.source.source')"
say fallback "$(printf %s "$status" | jq -r '.source.fallback_reason // "-" | split("\n")[0]')"
say refresh "$(printf %s "$status" | jq -r '.source.refresh')"
say layout "$(printf %s "$status" | jq -r '.source.cgroup_layout')"
# A locked-down kernel (a row of the matrix) takes eBPF away: the fallback runs the suite
# and says why.
if grep -q 'lockdown=confidentiality' /proc/cmdline; then
    locked() {
        printf %s "$status" |
            jq -e '.source.source == "procfs" and (.source.fallback_reason | test("locked down"))' > /dev/null
    }
    check fallback_lockdown locked
fi
journal_field() { # the first value of GUARDIAN_<NAME> in the guardian's journal
    journalctl -u guardian --no-pager -o json | jq -r "select(.GUARDIAN_$1) | .GUARDIAN_$1" | head -n 1
}
say load_ms "$(journal_field LOAD_MS)"
say verified_insns "$(journal_field VERIFIED_INSNS)"
say oom_program "$(journal_field OOM_VICTIM_PROGRAM)"
# Events through the BPF ring buffer so far (none in procfs mode).
say ring_events "$(api /metrics | awk '/^guardian_events_received_total/ { n += $2 } END { print n + 0 }')"

# Per-cgroup PSI: the kernel has it and the guardian reports it.
check psi_kernel test -r /sys/fs/cgroup/system.slice/memory.pressure
psi_count() { api /api/v1/cgroups | jq '[.. | objects | select(has("pressure")) | .pressure | select(. != null)] | length'; }
has_psi() { [ "$(psi_count)" -gt 0 ]; }
check psi_reported wait_for 30 has_psi

# A real OOM kill in a v2 memory.max cgroup: `tail /dev/zero` buffers until killed.
oom_test() { # oom_test LABEL: kill in a fresh cgroup, look for the victim in the API
    cg=/sys/fs/cgroup/vm-oom-$1
    mkdir "$cg"
    echo 32M > "$cg/memory.max"
    echo 0 > "$cg/memory.swap.max" 2> /dev/null
    sh -c "echo \$\$ > $cg/cgroup.procs && exec tail /dev/zero" &
    victim=$!
    wait "$victim"
    kills=$(awk '$1 == "oom_kill" {print $2}' "$cg/memory.events")
    check "oom_kill_$1" [ "${kills:-0}" -ge 1 ]
    reported() { [ "$(api /api/v1/oom-events | jq --argjson pid "$victim" 'any(.[]; .pid == $pid and .comm == "tail")')" = true ]; }
    check "oom_victim_$1" wait_for 30 reported
    say "oom_event_$1" "$(api /api/v1/oom-events | jq -c --argjson pid "$victim" '[.[] | select(.pid == $pid)][0] | {pid, comm, cgroup, scope, origin}')"
    rmdir "$cg"
}
oom_test auto

# Reload: a new config is applied without a restart. It adds a host rule on the suite's
# hog and a trend detector without warm-up.
pid=$(systemctl show -p MainPID --value guardian)
printf '%s\n' '[daemon]' 'scan_interval = "1s"' '' '[trends]' 'min_rss = "1MiB"' \
    'warmup = "0s"' '' '[[rule]]' 'name = "vm-hog"' 'threshold = "64MiB"' \
    'scope = "host"' 'action = "kill"' 'match = { cmdline = "guardian-vm-hog( |$)" }' \
    '' '[[pressure_rule]]' 'name = "vm-squeeze"' 'mem_available_below = "250MiB"' \
    'sustain = "1s"' 'cooldown = "5s"' 'scope = "host"' 'action = "kill"' \
    'match = { cmdline = "guardian-vm-squeeze( |$)" }' \
    > /etc/guardian/guardian.toml
systemctl reload guardian
reloaded() { api /metrics | grep -q 'guardian_config_reloads_total{result="ok"} 1'; }
check reload wait_for 30 reloaded
same_pid() { [ "$pid" != 0 ] && [ "$(systemctl show -p MainPID --value guardian)" = "$pid" ]; }
check reload_same_pid same_pid

# RSS as the guardian reports it against the kernel's VmRSS, for a shell holding a
# steady 40 MB string: within max(1 MiB, 2 %).
sh -c 'v=$(head -c 40000000 /dev/zero | tr "\0" x); sleep 600' &
holder=$!
vmrss() { awk '$1 == "VmRSS:" {print $2 * 1024}' "/proc/$1/status" 2> /dev/null; }
seen_rss() { api "/api/v1/processes?pid=$holder" | jq '.[0].memory.rss // 0'; }
grown() { [ "$(vmrss "$holder")" -ge 40000000 ]; }
wait_for 60 grown
rss_close() {
    awk -v k="$(vmrss "$holder")" -v s="$(seen_rss)" 'BEGIN {
        d = k - s; if (d < 0) d = -d; t = k * 0.02; if (t < 1048576) t = 1048576
        exit !(d <= t) }'
}
check rss_within_2pct wait_for 30 rss_close
say rss "kernel $(vmrss "$holder") guardian $(seen_rss)"
kill "$holder"

# Docker runs in the VM and takes the busybox image offline. The guest kernel has
# AppArmor but the rootfs no apparmor_parser, so the container runs unconfined.
mkdir -p /tmp/image/bin
cp /mnt/payload/busybox /tmp/image/bin/busybox
for applet in sh head yes sleep; do ln -s busybox "/tmp/image/bin/$applet"; done
check docker_ready wait_for 120 docker info -f '{{.ServerVersion}}'
check docker_import sh -c 'tar -C /tmp/image -c . | docker import - guardian-vm-busybox > /dev/null'

# The hog's container twin: a shell holding 80 MB whose command line matches the host
# rule below (`; :` keeps ash from exec'ing sleep, so the shell is what holds it; `yes`
# rather than `tr`, which takes minutes under TCG with the matrix's VMs side by side).
docker run -d --name twin --network none --security-opt apparmor=unconfined -m 300m \
    guardian-vm-busybox sh -c 'v=$(yes | head -c 80000000); sleep 600; :' \
    guardian-vm-hog > /dev/null
twin=$(docker inspect -f '{{.State.Pid}}' twin 2> /dev/null)
say twin_pid "${twin:-none}"
twin_grown() { [ "$(vmrss "$twin")" -ge 67108864 ] 2> /dev/null; }
check twin_grown wait_for 180 twin_grown
twin_container() { api "/api/v1/processes?pid=$twin" | grep -q '"kind":"container"'; }
check twin_container wait_for 30 twin_container ||
    guardian explain "${twin:-0}" 2>&1 | sed 's/^/GUARDIAN-VM twin_explain /' > /dev/ttyS0
twin_spared() {
    [ "$(docker inspect -f '{{.State.Running}}' twin)" = true ] &&
        ! jq -e --argjson pid "${twin:-0}" 'select(.pid == $pid)' \
            /var/lib/guardian/kills.jsonl > /dev/null 2>&1
}

# A host rule kills a hog in a user slice: `tail /dev/zero` (argv[0] renamed to the
# rule's marker) grows until the guardian SIGKILLs it; MemoryMax keeps the VM safe
# should it not.
systemd-run --quiet --slice=user.slice --unit=vm-hog -p MemoryMax=400M \
    bash -c 'exec -a guardian-vm-hog tail /dev/zero'
hog=$(systemctl show -p MainPID --value vm-hog)
hog_outcome() {
    jq -c --argjson pid "$hog" 'select(.pid == $pid and .kind == "outcome")' \
        /var/lib/guardian/kills.jsonl 2> /dev/null | tail -n 1
}
hog_killed() { [ -n "$(hog_outcome)" ]; }
check hog_killed wait_for 60 hog_killed
say hog_outcome "$(hog_outcome | jq -c '{rule, outcome, signals_sent}')"
hog_not_oom() { [ "$(systemctl show -p Result --value vm-hog)" != oom-kill ]; }
check hog_not_oom_killed hog_not_oom
check twin_spared twin_spared ||
    say twin_records "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' twin)" \
        "$(jq -c --argjson pid "${twin:-0}" 'select(.pid == $pid) | del(.cmdline)' \
            /var/lib/guardian/kills.jsonl 2> /dev/null | head -c 2000)"
check audit_verify guardian audit verify /var/lib/guardian/kills.jsonl
systemctl reset-failed vm-hog 2> /dev/null

# Host memory squeezed for real: two host processes grow (40 and 20 MB/s) until
# MemAvailable stays under the pressure rule's 250MiB for 1 s; the rule kills the
# larger one before the kernel's OOM killer runs, and the container twin survives.
squeeze() { # squeeze UNIT BYTES LINES: `tail -n LINES` buffers BYTES of NULs per 0.2 s
    systemd-run --quiet --slice=user.slice --unit="$1" -p MemoryMax=700M bash -c \
        "while :; do head -c $2 /dev/zero; sleep 0.2; done | bash -c 'exec -a guardian-vm-squeeze tail -n $3'"
}
squeeze vm-squeeze-fast 8000000 1
squeeze vm-squeeze-slow 4000000 2
fast_pid() { fast=$(pgrep -f 'guardian-vm-squeeze -n 1'); [ -n "$fast" ]; }
wait_for 30 fast_pid
squeezed() {
    jq -c --argjson pid "${fast:-0}" 'select(.kind == "intent" and .rule == "vm-squeeze" and .pid == $pid)' \
        /var/lib/guardian/kills.jsonl 2> /dev/null | tail -n 1
}
squeeze_killed() { [ -n "$(squeezed)" ] && ! kill -0 "$fast" 2> /dev/null; }
check squeeze_killed_largest wait_for 120 squeeze_killed
say squeeze_trigger "$(squeezed | jq -c '{trigger, reason}')"
say squeeze_outcome "$(jq -c --argjson pid "${fast:-0}" 'select(.kind == "outcome" and .pid == $pid)
    | {rule, outcome, signals_sent, time_to_exit_s}' /var/lib/guardian/kills.jsonl 2> /dev/null | tail -n 1)"
no_oom_kill() { ! dmesg | grep -q 'Out of memory: Killed'; }
check squeeze_before_oom_killer no_oom_kill
check squeeze_twin_spared twin_spared
systemctl stop vm-squeeze-fast vm-squeeze-slow 2> /dev/null
systemctl reset-failed vm-squeeze-fast vm-squeeze-slow 2> /dev/null
docker rm -f twin > /dev/null 2>&1


# A leak in a limited cgroup: `tail` buffers 1 MB a second of NUL bytes (no newline to
# print) under a 300M memory.max; the trend reports it with its time to that limit.
cg=/sys/fs/cgroup/vm-leak
mkdir "$cg"
echo 300M > "$cg/memory.max"
sh -c "echo \$\$ > $cg/cgroup.procs && while :; do head -c 1000000 /dev/zero; sleep 1; done | tail" &
leak_trend() {
    api '/api/v1/trends?limit=1000' | jq -c '[.[] | select(.subject.comm == "tail"
        and .limit_kind == "cgroup" and .time_to_limit_s != null)][0] // empty'
}
has_leak_trend() { [ -n "$(leak_trend)" ]; }
check leak_time_to_limit wait_for 240 has_leak_trend
say leak_trend "$(leak_trend | jq -c '{verdict, slope_bytes_per_second, time_to_limit_s, limit_bytes}')"
# shellcheck disable=SC2046
kill $(cat "$cg/cgroup.procs") 2> /dev/null
wait_for 10 rmdir "$cg"

# The watchdog: a stopped guardian misses its pings (WatchdogSec=20s) and systemd
# restarts it.
pid=$(systemctl show -p MainPID --value guardian)
kill -STOP "$pid"
restarted() {
    now=$(systemctl show -p MainPID --value guardian)
    [ "$now" != 0 ] && [ "$now" != "$pid" ] && is_active
}
check watchdog_restart wait_for 90 restarted
say watchdog "$(systemctl show -p NRestarts --value guardian) restart(s)"

# procfs mode: the OOM victim comes from the kernel log (/dev/kmsg).
printf '[daemon]\nscan_interval = "1s"\nsource = "procfs"\n' > /etc/guardian/guardian.toml
systemctl restart guardian
check ready_procfs wait_for 60 is_active || finish
check api_procfs wait_for 30 api /api/v1/status -o /dev/null
say source_procfs "$(api /api/v1/status | jq -r '.source.source')"
oom_test procfs

finish
