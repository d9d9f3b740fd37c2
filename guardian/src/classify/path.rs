//! One cgroup path to a [`Classification`]: the runtime layouts, walked outermost first.

use super::{Classification, QosClass, Runtime};

/// Classifies one cgroup path ("/docker/<id>", "/system.slice/foo.service").
///
/// Components are read from the root down; the first one that names a container
/// decides (so a container nested in another is reported as the outer one, the one the
/// host's runtime knows). A path that names no runtime but carries a 64-hex-digit id
/// somewhere (an unknown runtime, a custom `--cgroup-parent`) is
/// [`Classification::Unknown`]; any other path is a host path.
pub fn classify_path(path: &str) -> Classification {
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    let mut group = None;
    for (index, part) in parts.iter().enumerate() {
        let rest = &parts[index + 1..];
        if *part == "kubepods" {
            return kube_cgroupfs(rest);
        }
        if let Some(slice) = part.strip_suffix(".slice")
            && slice.split('-').any(|segment| segment == "kubepods")
        {
            return kube_systemd(&parts[index..]);
        }
        match top_level(part, rest.first().copied()) {
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
    if parts.iter().any(|part| has_container_id(part)) {
        return Classification::Unknown;
    }
    let unit = parts
        .iter()
        .rev()
        .find(|part| part.ends_with(".service") || part.ends_with(".scope"))
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

/// A component outside `kubepods`; `next` is the component below it.
fn top_level(part: &str, next: Option<&str>) -> Found {
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
        _ => {}
    }
    if let Some(name) = part.strip_prefix("lxc.payload.") {
        return Found::Final(if name.is_empty() {
            Classification::Unknown
        } else {
            container(Runtime::Lxc, name, None, None)
        });
    }
    if part == "lxc.monitor" || part.starts_with("lxc.monitor.") {
        return Found::Final(group(Runtime::Lxc, None, None));
    }
    if let Some(name) = part
        .strip_prefix("machine-")
        .and_then(|rest| rest.strip_suffix(".scope"))
    {
        let name = systemd_unescape(name);
        // libvirt registers its guests with machined too (`machine-qemu\x2d1\x2dvm.scope`):
        // virtual machines and libvirt-lxc guests are not nspawn containers.
        return Found::Final(
            if name.is_empty() || name.starts_with("qemu-") || name.starts_with("lxc-") {
                Classification::Unknown
            } else {
                container(Runtime::Nspawn, &name, None, None)
            },
        );
    }
    if part.contains("libpod_pod_") && part.ends_with(".slice") {
        return Found::Group(group(Runtime::Podman, None, None));
    }
    match runtime_leaf(part) {
        Some(Leaf::Container(runtime, id)) => Found::Final(container(runtime, id, None, None)),
        Some(Leaf::Monitor(runtime)) => Found::Final(group(runtime, None, None)),
        Some(Leaf::Malformed) => Found::Final(Classification::Unknown),
        None => Found::Nothing,
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
    ("libpod-conmon-", None, Runtime::Podman),
    ("crio-conmon-", None, Runtime::Crio),
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

/// kubelet's systemd driver: `/kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid>.slice/<runtime>-<id>.scope`,
/// with the uid's dashes written as underscores. The slices may carry a prefix
/// (`kubelet-kubepods.slice` under kind).
fn kube_systemd(parts: &[&str]) -> Classification {
    let mut qos = None;
    let mut uid = None;
    let mut index = 0;
    while let Some(slice) = parts
        .get(index)
        .and_then(|part| part.strip_suffix(".slice"))
    {
        let mut segments = slice.split('-');
        if !segments.any(|segment| segment == "kubepods") {
            return Classification::Unknown;
        }
        for segment in segments {
            match segment {
                "burstable" => qos = Some(QosClass::Burstable),
                "besteffort" => qos = Some(QosClass::BestEffort),
                _ => match segment.strip_prefix("pod") {
                    Some(found) if is_pod_uid(found) => uid = Some(found.replace('_', "-")),
                    _ => return Classification::Unknown,
                },
            }
        }
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
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True when `part` holds a run of 64 hex digits: some runtime's container id.
fn has_container_id(part: &str) -> bool {
    let mut run = 0;
    for byte in part.bytes() {
        if byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte) {
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

/// A pod UID as kubelet writes it: hex digits with dashes (cgroupfs) or underscores
/// (systemd).
fn is_pod_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
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
