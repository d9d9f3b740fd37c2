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
say load_ms "$(journalctl -u guardian --no-pager -o json | jq -r 'select(.GUARDIAN_LOAD_MS) | .GUARDIAN_LOAD_MS' | head -n 1)"

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

# Reload: a new config is applied without a restart.
pid=$(systemctl show -p MainPID --value guardian)
printf '[daemon]\nscan_interval = "1s"\n' > /etc/guardian/guardian.toml
systemctl reload guardian
reloaded() { api /metrics | grep -q 'guardian_config_reloads_total{result="ok"} 1'; }
check reload wait_for 30 reloaded
same_pid() { [ "$pid" != 0 ] && [ "$(systemctl show -p MainPID --value guardian)" = "$pid" ]; }
check reload_same_pid same_pid

# procfs mode: the OOM victim comes from the kernel log (/dev/kmsg).
printf '[daemon]\nscan_interval = "1s"\nsource = "procfs"\n' > /etc/guardian/guardian.toml
systemctl restart guardian
check ready_procfs wait_for 60 is_active || finish
check api_procfs wait_for 30 api /api/v1/status -o /dev/null
say source_procfs "$(api /api/v1/status | jq -r '.source.source')"
oom_test procfs

finish
