//! Names from the OCI bundles containerd and CRI-O keep per running container: the
//! bundle's `config.json` annotations (the CRI's pod and container names, the image)
//! and `init.pid`. What `ctr containers info` and `crictl inspect` show, read from the
//! state directories instead of the runtimes' gRPC APIs.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use super::ContainerName;

/// Largest `config.json` read (a bundle's spec is a few KiB).
const MAX_SPEC: u64 = 1 << 20;

#[derive(Debug, Default, Deserialize)]
struct Spec {
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// Looks for container `id`'s bundle under `dir`: containerd's
/// `<dir>/<namespace>/<id>/` or CRI-O's (and Podman's) `<dir>/<id>/userdata/`.
pub fn read_bundle(dir: &Path, id: &str) -> Option<ContainerName> {
    let crio = dir.join(id).join("userdata");
    if crio.join("config.json").is_file() {
        return read(&crio, None);
    }
    let namespaces = std::fs::read_dir(dir).ok()?;
    namespaces
        .filter_map(Result::ok)
        .map(|entry| entry.path().join(id))
        .find(|bundle| bundle.join("config.json").is_file())
        .and_then(|bundle| {
            let namespace = bundle
                .parent()
                .and_then(Path::file_name)
                .map(|name| name.to_string_lossy().into_owned());
            read(&bundle, namespace)
        })
}

fn read(bundle: &Path, namespace: Option<String>) -> Option<ContainerName> {
    let spec = read_limited(&bundle.join("config.json"))?;
    let spec: Spec = serde_json::from_slice(&spec).ok()?;
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|key| spec.annotations.get(*key))
            .filter(|value| !value.is_empty())
            .cloned()
    };
    // containerd's CRI plugin and CRI-O write the names under different keys.
    let container = get(&[
        "io.kubernetes.cri.container-name",
        "io.kubernetes.container.name",
    ]);
    let crio = spec
        .annotations
        .keys()
        .any(|key| key.starts_with("io.kubernetes.cri-o."));
    let id = bundle
        .file_name()
        .filter(|name| *name != "userdata")
        .or_else(|| bundle.parent().and_then(Path::file_name))
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let init_pid = read_limited(&bundle.join("init.pid"))
        .or_else(|| read_limited(&bundle.join("pidfile")))
        .and_then(|text| String::from_utf8_lossy(&text).trim().parse().ok());
    // Podman keeps its bundles where CRI-O does, with no names in them: its Engine API
    // socket names those.
    if namespace.is_none() && !crio && container.is_none() {
        return None;
    }
    Some(ContainerName {
        source: if namespace.is_some() {
            "containerd"
        } else {
            "cri-o"
        },
        // A container ctr started has no other name than its id.
        name: container.unwrap_or(id),
        image: get(&[
            "io.kubernetes.cri.image-name",
            "io.kubernetes.cri-o.ImageName",
        ]),
        namespace,
        pod_name: get(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]),
        pod_namespace: get(&[
            "io.kubernetes.cri.sandbox-namespace",
            "io.kubernetes.pod.namespace",
        ]),
        pod_uid: get(&["io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"]),
        init_pid,
    })
}

/// A small file's bytes, or nothing when it is missing, unreadable or too large.
fn read_limited(path: &PathBuf) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_SPEC).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}
