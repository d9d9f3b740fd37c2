//! Engine API answers over real unix sockets (well-behaved, silent, garbage, endless),
//! the CRI client against the hostile ones (a real containerd answers it in the
//! integration tests), and bundle directories laid out as containerd, CRI-O and Podman lay them out.

use std::{path::Path, time::Duration};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

const ID: &str = "3726184226f5d3147c25fdeab5b60097e378e8a720503a5e19ecfdf29f869860";

/// What `docker inspect` answers, trimmed to the fields read (plus some that are not).
const INSPECT: &str = r#"{"Id":"3726184226f5d3147c25fdeab5b60097e378e8a720503a5e19ecfdf29f869860",
"Name":"/web","State":{"Status":"running","Running":true,"Pid":4242},
"Config":{"Hostname":"372618422","Image":"nginx:1.27","Labels":{"com.example":"x"}},
"HostConfig":{"Memory":0}}"#;

/// How a test socket behaves.
#[derive(Clone, Copy)]
enum Peer {
    Answer(&'static str, &'static str),
    Silent,
    Garbage,
    Endless,
}

/// Serves one connection on a fresh socket in `dir` the way `peer` says.
fn serve(dir: &Path, peer: Peer) -> std::path::PathBuf {
    let socket = dir.join("engine.sock");
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).await;
        match peer {
            Peer::Answer(status, body) => {
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
            Peer::Silent => tokio::time::sleep(Duration::from_secs(3600)).await,
            Peer::Garbage => {
                let _ = stream.write_all(b"\x00\x01 not http at all\r\n\r\n").await;
            }
            Peer::Endless => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await;
                let chunk = format!("10000\r\n{}\r\n", "a".repeat(0x10000));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
            }
        }
    });
    socket
}

#[tokio::test]
async fn an_engine_names_its_container() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = serve(dir.path(), Peer::Answer("200 OK", INSPECT));
    let name = inspect(&socket, ID, Duration::from_secs(5))
        .await
        .expect("answer")
        .expect("known");
    assert_eq!(name.name, "web");
    assert_eq!(name.image.as_deref(), Some("nginx:1.27"));
    assert_eq!(name.init_pid, Some(4242));
    assert_eq!(name.source, "docker-api");
}

#[tokio::test]
async fn kubernetes_labels_name_the_pod_and_container() {
    let dir = tempfile::tempdir().expect("temp dir");
    let body = r#"{"Name":"/k8s_app_web-7d9_default_5c6d_0","Config":{"Image":"sha256:ab",
"Labels":{"io.kubernetes.container.name":"app","io.kubernetes.pod.name":"web-7d9",
"io.kubernetes.pod.namespace":"default"}},"State":{"Pid":7}}"#;
    let socket = serve(dir.path(), Peer::Answer("200 OK", body));
    let name = inspect(&socket, ID, Duration::from_secs(5))
        .await
        .expect("answer")
        .expect("known");
    assert_eq!(name.name, "app");
    assert_eq!(name.pod_name.as_deref(), Some("web-7d9"));
    assert_eq!(name.pod_namespace.as_deref(), Some("default"));
}

#[tokio::test]
async fn an_unknown_id_is_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = serve(
        dir.path(),
        Peer::Answer("404 Not Found", r#"{"message":"No such container"}"#),
    );
    let answer = inspect(&socket, ID, Duration::from_secs(5)).await;
    assert!(matches!(answer, Ok(None)), "{answer:?}");
}

#[tokio::test]
async fn a_silent_socket_times_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = serve(dir.path(), Peer::Silent);
    let answer = inspect(&socket, ID, Duration::from_millis(200)).await;
    assert!(
        matches!(answer, Err(LookupError::Timeout { .. })),
        "{answer:?}"
    );
}

#[tokio::test]
async fn garbage_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = serve(dir.path(), Peer::Garbage);
    let answer = inspect(&socket, ID, Duration::from_secs(5)).await;
    assert!(
        matches!(answer, Err(LookupError::Http { .. })),
        "{answer:?}"
    );
}

#[tokio::test]
async fn an_endless_answer_is_cut_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = serve(dir.path(), Peer::Endless);
    let answer = inspect(&socket, ID, Duration::from_secs(30)).await;
    assert!(
        matches!(answer, Err(LookupError::Body { .. })),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_missing_socket_is_skipped_and_nobody_knows_the_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lookup = Lookup {
        engine_sockets: vec![dir.path().join("absent.sock")],
        cri_sockets: vec![dir.path().join("absent-cri.sock")],
        bundle_dirs: vec![dir.path().join("absent")],
        timeout: Duration::from_secs(1),
    };
    assert!(matches!(lookup.name_of(ID).await, Ok(None)));
}

#[tokio::test]
async fn a_silent_cri_socket_times_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = serve(dir.path(), Peer::Silent);
    let answer = query_cri(&socket, ID, Duration::from_millis(300)).await;
    assert!(
        matches!(answer, Err(LookupError::Timeout { .. })),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_cri_socket_speaking_garbage_is_an_error_and_no_name() {
    for peer in [Peer::Garbage, Peer::Endless] {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = serve(dir.path(), peer);
        let answer = query_cri(&socket, ID, Duration::from_secs(5)).await;
        assert!(
            matches!(
                answer,
                Err(LookupError::Cri { .. } | LookupError::CriConnect { .. })
            ),
            "{answer:?}"
        );
    }
}

#[tokio::test]
async fn a_bundle_still_names_a_container_a_broken_cri_socket_cannot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = serve(dir.path(), Peer::Garbage);
    let bundles = dir.path().join("task");
    write(
        &bundles.join("default").join(ID).join("config.json"),
        r#"{"ociVersion":"1.1.0"}"#,
    );
    let lookup = Lookup {
        engine_sockets: Vec::new(),
        cri_sockets: vec![socket],
        bundle_dirs: vec![bundles],
        timeout: Duration::from_secs(5),
    };
    let name = lookup.name_of(ID).await.expect("answer").expect("named");
    assert_eq!(name.source, "containerd");
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn a_cri_containerd_bundle_names_pod_and_container() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().join("k8s.io").join(ID);
    write(
        &bundle.join("config.json"),
        r#"{"ociVersion":"1.1.0","annotations":{
"io.kubernetes.cri.container-type":"container",
"io.kubernetes.cri.container-name":"app",
"io.kubernetes.cri.image-name":"docker.io/library/nginx:1.27",
"io.kubernetes.cri.sandbox-name":"web-7d9",
"io.kubernetes.cri.sandbox-namespace":"shop"}}"#,
    );
    write(&bundle.join("init.pid"), "4242");
    let name = read_bundle(dir.path(), ID).expect("named");
    assert_eq!(name.source, "containerd");
    assert_eq!(name.name, "app");
    assert_eq!(name.namespace.as_deref(), Some("k8s.io"));
    assert_eq!(name.pod_name.as_deref(), Some("web-7d9"));
    assert_eq!(name.pod_namespace.as_deref(), Some("shop"));
    assert_eq!(name.image.as_deref(), Some("docker.io/library/nginx:1.27"));
    assert_eq!(name.init_pid, Some(4242));
}

#[test]
fn a_ctr_bundle_is_named_by_its_id_and_namespace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().join("default").join(ID);
    write(&bundle.join("config.json"), r#"{"ociVersion":"1.1.0"}"#);
    write(&bundle.join("init.pid"), "77\n");
    let name = read_bundle(dir.path(), ID).expect("named");
    assert_eq!(name.name, ID);
    assert_eq!(name.namespace.as_deref(), Some("default"));
    assert_eq!(name.init_pid, Some(77));
}

#[test]
fn a_crio_bundle_names_pod_and_container_and_podmans_is_left_to_its_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        &dir.path().join(ID).join("userdata").join("config.json"),
        r#"{"annotations":{"io.kubernetes.cri-o.ContainerType":"container",
"io.kubernetes.container.name":"db","io.kubernetes.pod.name":"db-0",
"io.kubernetes.pod.namespace":"shop","io.kubernetes.cri-o.ImageName":"postgres:16"}}"#,
    );
    write(&dir.path().join(ID).join("userdata").join("pidfile"), "99");
    let name = read_bundle(dir.path(), ID).expect("named");
    assert_eq!(name.source, "cri-o");
    assert_eq!(name.name, "db");
    assert_eq!(name.pod_name.as_deref(), Some("db-0"));
    assert_eq!(name.image.as_deref(), Some("postgres:16"));
    assert_eq!(name.init_pid, Some(99));

    let podman = tempfile::tempdir().expect("temp dir");
    write(
        &podman.path().join(ID).join("userdata").join("config.json"),
        r#"{"annotations":{"io.container.manager":"libpod"}}"#,
    );
    assert_eq!(read_bundle(podman.path(), ID), None);
}

#[test]
fn an_oversized_or_broken_spec_names_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        &dir.path().join("default").join(ID).join("config.json"),
        "{not json",
    );
    assert_eq!(read_bundle(dir.path(), ID), None);
}
