//! One cgroup path to a [`Classification`]: the runtime layouts, walked outermost first.

use super::{Classification, QosClass, Runtime};

/// Classifies one cgroup path ("/docker/<id>", "/system.slice/foo.service").
///
/// Components are read from the root down; the first one that names a container
/// decides (so a container nested in another is reported as the outer one, the one the
/// host's runtime knows). A path that names no runtime but carries a 64-hex-digit id
/// somewhere (an unknown runtime, a custom `--cgroup-parent`) is
/// [`Classification::Unknown`], and so is a path read from inside a cgroup namespace
/// (`/../..`); any other path is a host path. Mount units named after container storage
/// (`var-lib-docker-overlay2-<id>-merged.mount`) are host units.
pub fn classify_path(path: &str) -> Classification {
    // The kernel marks the cgroup of a zombie whose cgroup was removed.
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    if parts.contains(&"..") {
        return Classification::Unknown;
    }
    let mut group = None;
    for (index, part) in parts.iter().enumerate() {
        let rest = &parts[index + 1..];
        // A runtime layout inside a cgroup that already carries an id no rule knew
        // (kind inside a CI job's container) is that unknown container's.
        if group.is_none()
            && index > 0
            && has_container_id(parts[index - 1])
            && !is_mount_unit(parts[index - 1])
        {
            return Classification::Unknown;
        }
        if *part == "kubepods" {
            return kube_cgroupfs(rest);
        }
        if let Some(slice) = part.strip_suffix(".slice")
            && kube_slice(slice).is_some()
        {
            return kube_systemd(&parts[index..]);
        }
        match top_level(index, part, rest) {
            Found::Final(class) => return class,
            Found::Group(class) => {
                group.get_or_insert(class);
            }
            Found::Nothing => {}
        }
    }
    if let Some(group) = group {
        return group;
    }
    if parts
        .iter()
        .any(|part| !is_mount_unit(part) && has_container_id(part))
    {
        return Classification::Unknown;
    }
    let unit = parts
        .iter()
        .rev()
        .find(|part| part.ends_with(".service") || part.ends_with(".scope") || is_mount_unit(part))
        .map(|unit| (*unit).to_string());
    Classification::Host { unit }
}

/// What one component says.
enum Found {
    /// A container, a malformed runtime component (unknown), or a group that ends the
    /// path: the answer.
    Final(Classification),
    /// A runtime-managed group whose children may still name a container.
    Group(Classification),
    Nothing,
}

/// A component outside `kubepods`: `index` is its depth, `rest` the components below.
fn top_level(index: usize, part: &str, rest: &[&str]) -> Found {
    let next = rest.first().copied();
    match part {
        "docker" => {
            return Found::Final(match next {
                None => group(Runtime::Docker, None, None),
                Some(id) if is_container_id(id) => container(Runtime::Docker, id, None, None),
                Some(_) => Classification::Unknown,
            });
        }
        "lxc" | "lxc.payload" => {
            return Found::Final(match next {
                None => group(Runtime::Lxc, None, None),
                Some(name) => container(Runtime::Lxc, name, None, None),
            });
        }
        "lxc.monitor" | "lxc.pivot" => return Found::Final(group(Runtime::Lxc, None, None)),
        "libpod_parent" => {
            return if next == Some("conmon") {
                Found::Final(group(Runtime::Podman, None, None))
            } else {
                Found::Group(group(Runtime::Podman, None, None))
            };
        }
        "nomad.slice" | "nomad" => return nomad(rest),
        // ctr and nerdctl with the cgroupfs driver: `/<namespace>/<id>`, namespace
        // `default` unless set.
        "default" if index == 0 => {
            if let Some(id) = next.filter(|id| is_container_id(id)) {
                return Found::Final(container(Runtime::Containerd, id, None, None));
            }
        }
        // The ECS agent on cgroup v1: `/ecs/<task id>/<container id>`.
        "ecs" if index == 0 => return Found::Final(ecs(rest)),
        _ => {}
    }
    if let Some(name) = part.strip_prefix("lxc.payload.") {
        return Found::Final(if name.is_empty() {
            Classification::Unknown
        } else {
            container(Runtime::Lxc, name, None, None)
        });
    }
    if part.starts_with("lxc.monitor.") {
        return Found::Final(group(Runtime::Lxc, None, None));
    }
    if let Some(name) = part
        .strip_prefix("machine-")
        .and_then(|rest| rest.strip_suffix(".scope"))
    {
        return Found::Final(machine(name));
    }
    if let Some(name) = part
        .strip_prefix("systemd-nspawn@")
        .and_then(|rest| rest.strip_suffix(".service"))
    {
        let name = systemd_unescape(name);
        return Found::Final(if name.is_empty() {
            Classification::Unknown
        } else if next == Some("supervisor") {
            group(Runtime::Nspawn, None, None)
        } else {
            container(Runtime::Nspawn, &name, None, None)
        });
    }
    if part.contains("libpod_pod_") && part.ends_with(".slice") {
        return Found::Group(group(Runtime::Podman, None, None));
    }
    // The ECS agent on cgroup v2: `ecstasks.slice/ecstasks-<task id>.slice/docker-<id>.scope`.
    if part == "ecstasks.slice" || (part.starts_with("ecstasks-") && part.ends_with(".slice")) {
        return Found::Group(group(Runtime::Docker, None, None));
    }
    if part.contains(':') {
        return Found::Final(colon_form(part));
    }
    match runtime_leaf(part) {
        Some(Leaf::Container(runtime, id)) => Found::Final(container(runtime, id, None, None)),
        Some(Leaf::Monitor(runtime)) => Found::Final(group(runtime, None, None)),
        Some(Leaf::Malformed) => Found::Final(Classification::Unknown),
        None => Found::Nothing,
    }
}

/// `machine-<name>.scope`: a machine registered with systemd-machined.
fn machine(escaped: &str) -> Classification {
    let name = systemd_unescape(escaped);
    // libvirt registers its guests with machined too (`machine-qemu\x2d1\x2dvm.scope`):
    // virtual machines and libvirt-lxc guests are not nspawn containers.
    if name.is_empty() || name.starts_with("qemu-") || name.starts_with("lxc-") {
        Classification::Unknown
    } else {
        container(Runtime::Nspawn, &name, None, None)
    }
}

/// Nomad's task cgroups: `nomad.slice/[share.slice|reserve.slice/]<alloc id>.<task>.scope`
/// on v2, `nomad/[share|reserve/]<alloc id>.<task>` on v1. Anything else below Nomad's
/// parent (a Docker or Podman task's scope) is read by the walk that goes on.
fn nomad(rest: &[&str]) -> Found {
    let mut rest = rest.iter().copied();
    let mut task = rest.next();
    if let Some("share.slice" | "reserve.slice" | "share" | "reserve") = task {
        task = rest.next();
    }
    let Some(task) = task else {
        return Found::Final(group(Runtime::Nomad, None, None));
    };
    let name = task.strip_suffix(".scope").unwrap_or(task);
    match name.split_once('.') {
        Some((alloc, task_name)) if is_uuid(alloc) && !task_name.is_empty() => {
            Found::Final(container(Runtime::Nomad, name, None, None))
        }
        _ => Found::Group(group(Runtime::Nomad, None, None)),
    }
}

/// The ECS agent's v1 layout below `/ecs`: a task, then its containers.
fn ecs(rest: &[&str]) -> Classification {
    match rest {
        [] => group(Runtime::Docker, None, None),
        [task, tail @ ..] if is_task_id(task) => match tail.first() {
            None => group(Runtime::Docker, None, None),
            Some(id) if is_container_id(id) => container(Runtime::Docker, id, None, None),
            Some(_) => Classification::Unknown,
        },
        _ => Classification::Unknown,
    }
}

/// `<slice>:<runtime prefix>:<id>`: the cgroup name runc gets in the systemd driver's
/// notation when the runtime does not use systemd after all (containerd with
/// `SystemdCgroup = false` under a kubelet with the systemd driver):
/// `kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`.
fn colon_form(part: &str) -> Classification {
    let mut fields = part.split(':');
    let (Some(slice), Some(prefix), Some(id), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Classification::Unknown;
    };
    let runtime = match prefix {
        "cri-containerd" | "nerdctl" => Runtime::Containerd,
        "crio" => Runtime::Crio,
        "docker" => Runtime::Docker,
        "libpod" => Runtime::Podman,
        _ => return Classification::Unknown,
    };
    if !is_container_id(id) {
        return Classification::Unknown;
    }
    let Some(slice) = slice.strip_suffix(".slice") else {
        return Classification::Unknown;
    };
    match kube_slice(slice) {
        Some(KubeSlice {
            qos,
            uid: Some(uid),
        }) => container(
            runtime,
            id,
            Some(uid),
            Some(qos.unwrap_or(QosClass::Guaranteed)),
        ),
        Some(KubeSlice { uid: None, .. }) => Classification::Unknown,
        None => container(runtime, id, None, None),
    }
}

/// A container's own cgroup, as each runtime names it.
enum Leaf<'a> {
    Container(Runtime, &'a str),
    /// The runtime's monitor process for a container (conmon).
    Monitor(Runtime),
    /// A runtime's prefix with something other than a container id after it.
    Malformed,
}

/// Prefixes of a container's cgroup (`<prefix><id>` with an optional `.scope`), longest
/// first so `crio-conmon-` is not read as `crio-` with id `conmon-...`.
const LEAVES: &[(&str, Option<Runtime>, Runtime)] = &[
    (
        "cri-containerd-",
        Some(Runtime::Containerd),
        Runtime::Containerd,
    ),
    // Podman's `--cgroups=split` (Quadlet units): the payload below the unit's cgroup.
    ("libpod-payload-", Some(Runtime::Podman), Runtime::Podman),
    ("libpod-conmon-", None, Runtime::Podman),
    ("crio-conmon-", None, Runtime::Crio),
    ("nerdctl-", Some(Runtime::Containerd), Runtime::Containerd),
    ("libpod-", Some(Runtime::Podman), Runtime::Podman),
    ("docker-", Some(Runtime::Docker), Runtime::Docker),
    ("crio-", Some(Runtime::Crio), Runtime::Crio),
];

fn runtime_leaf(part: &str) -> Option<Leaf<'_>> {
    let (prefix, container_runtime, runtime) = LEAVES
        .iter()
        .find(|(prefix, _, _)| part.starts_with(prefix))?;
    let id = &part[prefix.len()..];
    let id = id.strip_suffix(".scope").unwrap_or(id);
    Some(if !is_container_id(id) {
        Leaf::Malformed
    } else if let Some(container_runtime) = container_runtime {
        Leaf::Container(*container_runtime, id)
    } else {
        Leaf::Monitor(*runtime)
    })
}

/// kubelet's cgroupfs driver: `/kubepods[/burstable|/besteffort]/pod<uid>/<id>`.
fn kube_cgroupfs(rest: &[&str]) -> Classification {
    let mut rest = rest.iter().copied().peekable();
    let qos = match rest.peek() {
        Some(&"burstable") => Some(QosClass::Burstable),
        Some(&"besteffort") => Some(QosClass::BestEffort),
        _ => None,
    };
    if qos.is_some() {
        rest.next();
    }
    let Some(pod) = rest.next() else {
        return group(Runtime::Kubernetes, None, qos);
    };
    let Some(uid) = pod.strip_prefix("pod").filter(|uid| is_pod_uid(uid)) else {
        return Classification::Unknown;
    };
    kube_leaf(
        rest.next(),
        uid.to_string(),
        qos.unwrap_or(QosClass::Guaranteed),
    )
}

/// What one kubelet slice name (without `.slice`) says.
struct KubeSlice {
    qos: Option<QosClass>,
    /// The pod UID with dashes.
    uid: Option<String>,
}

/// Reads `[<prefix>-]kubepods[-<qos>][-pod<uid>]` (kubelet writes the uid's dashes as
/// underscores; kubelets before 1.8 left them as dashes). `None` when the name is not a
/// kubelet slice at all.
fn kube_slice(slice: &str) -> Option<KubeSlice> {
    let after = if slice == "kubepods" || slice.ends_with("-kubepods") {
        ""
    } else if let Some(at) = slice.find("kubepods-") {
        if at != 0 && !slice[..at].ends_with('-') {
            return None;
        }
        &slice[at + "kubepods-".len()..]
    } else {
        return None;
    };
    let (qos, after) = if let Some(rest) = after.strip_prefix("burstable") {
        (Some(QosClass::Burstable), rest)
    } else if let Some(rest) = after.strip_prefix("besteffort") {
        (Some(QosClass::BestEffort), rest)
    } else {
        (None, after)
    };
    let after = after.strip_prefix('-').unwrap_or(after);
    if after.is_empty() {
        return Some(KubeSlice { qos, uid: None });
    }
    let uid = after.strip_prefix("pod").filter(|uid| is_pod_uid(uid))?;
    Some(KubeSlice {
        qos,
        uid: Some(uid.replace('_', "-")),
    })
}

/// kubelet's systemd driver: `/kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid>.slice/<runtime>-<id>.scope`.
/// The slices may carry a prefix (`kubelet-kubepods.slice` under kind).
fn kube_systemd(parts: &[&str]) -> Classification {
    let mut qos = None;
    let mut uid = None;
    let mut index = 0;
    while let Some(slice) = parts
        .get(index)
        .and_then(|part| part.strip_suffix(".slice"))
    {
        let Some(found) = kube_slice(slice) else {
            return Classification::Unknown;
        };
        qos = found.qos.or(qos);
        uid = found.uid.or(uid);
        index += 1;
    }
    match uid {
        None if parts.len() == index => group(Runtime::Kubernetes, None, qos),
        None => Classification::Unknown,
        Some(uid) => kube_leaf(
            parts.get(index).copied(),
            uid,
            qos.unwrap_or(QosClass::Guaranteed),
        ),
    }
}

/// The component below a pod's cgroup: a container, a monitor, or nothing (the pod).
fn kube_leaf(leaf: Option<&str>, uid: String, qos: QosClass) -> Classification {
    let Some(leaf) = leaf else {
        return group(Runtime::Kubernetes, Some(uid), Some(qos));
    };
    if is_container_id(leaf) {
        return container(Runtime::Kubernetes, leaf, Some(uid), Some(qos));
    }
    match runtime_leaf(leaf) {
        Some(Leaf::Container(runtime, id)) => container(runtime, id, Some(uid), Some(qos)),
        Some(Leaf::Monitor(runtime)) => group(runtime, Some(uid), Some(qos)),
        Some(Leaf::Malformed) | None => Classification::Unknown,
    }
}

fn container(
    runtime: Runtime,
    id: &str,
    pod_uid: Option<String>,
    qos: Option<QosClass>,
) -> Classification {
    Classification::Container {
        runtime,
        id: id.to_string(),
        pod_uid,
        qos,
    }
}

fn group(runtime: Runtime, pod_uid: Option<String>, qos: Option<QosClass>) -> Classification {
    Classification::Group {
        runtime,
        pod_uid,
        qos,
    }
}

/// Docker, containerd, CRI-O and Podman all name containers by 64 lowercase hex digits.
fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(is_lower_hex)
}

fn is_lower_hex(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)
}

/// True when `part` holds a run of 64 hex digits: some runtime's container id.
fn has_container_id(part: &str) -> bool {
    let mut run = 0;
    for byte in part.bytes() {
        if is_lower_hex(byte) {
            run += 1;
            if run == 64 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// systemd's mount units (`var-lib-docker-overlay2-<id>-merged.mount`) hold no container
/// even when the mounted path names one.
fn is_mount_unit(part: &str) -> bool {
    part.ends_with(".mount")
}

/// A pod UID as kubelet writes it: hex digits with dashes (cgroupfs) or underscores
/// (systemd).
fn is_pod_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
}

/// An RFC 4122 UUID in its 36-character text form (Nomad's allocation ids).
fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(at, b)| match at {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// An ECS task id: 32 hex digits, or a UUID on older agents.
fn is_task_id(text: &str) -> bool {
    (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())) || is_uuid(text)
}

/// Undoes systemd's unit-name escaping (`\x2d` for `-`).
fn systemd_unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find("\\x") {
        out.push_str(&rest[..at]);
        let hex = rest.get(at + 2..at + 4);
        match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
            Some(byte) if byte.is_ascii() => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            _ => {
                out.push_str("\\x");
                rest = &rest[at + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}
