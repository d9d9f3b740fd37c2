//! Container names: what a lookup costs (the Docker Engine API over its unix socket, the
//! CRI of a containerd the bench starts, a containerd bundle on disk) beside what reading the cached name costs, and the work
//! the names add to each pipeline tick (a generation check) beside the tick's own /proc
//! scan of this host, measured in the same run. Lookups run in their own task, never on
//! the tick, scrape or kill path. Informational.
//!
//! `cargo bench -p guardian --bench names` (a running Docker engine adds the real-socket
//! row, Debian's containerd the CRI row; without them they are skipped and say so).

use std::{
    hint::black_box,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use guardian::{
    classify::{Classification, Runtime},
    names::{ContainerName, NameTable, Names, inspect, query_cri, read_bundle},
    sources::procfs::ProcReader,
};

const CONTAINERS: usize = 500;

fn id(n: usize) -> String {
    format!("{n:064x}")
}

/// Median of `runs` timings of `f`, each over `iterations` calls, per call.
fn per_call(runs: usize, iterations: usize, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed() / iterations as u32
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn table() -> NameTable {
    let mut table = NameTable::default();
    for n in 0..CONTAINERS {
        table.insert(
            id(n),
            ContainerName {
                source: "docker-api",
                name: format!("web-{n}"),
                image: Some("nginx:1.27".into()),
                ..ContainerName::default()
            },
        );
    }
    table
}

fn main() {
    let table = table();
    let class = Classification::Container {
        runtime: Runtime::Docker,
        id: id(CONTAINERS / 2),
        pod_uid: None,
        qos: None,
    };
    let hit = per_call(9, 1_000_000, || {
        black_box(black_box(&table).of(black_box(&class)));
    });
    let names = Names::default();
    let mut seen = u64::MAX;
    let tick = per_call(9, 1_000_000, || {
        let current = names.current();
        if current.generation() != seen {
            seen = current.generation();
        }
        black_box(&current);
    });

    let proc = ProcReader::new("/proc").expect("/proc");
    let scan = per_call(5, 3, || {
        for pid in proc.pids().expect("pids") {
            black_box(proc.read_process(pid).ok());
        }
    });
    let processes = proc.pids().map(|pids| pids.len()).unwrap_or(0);

    let bundles = tempfile::tempdir().expect("temp dir");
    let bundle = bundles.path().join("k8s.io").join(id(7));
    std::fs::create_dir_all(&bundle).expect("bundle dir");
    std::fs::write(
        bundle.join("config.json"),
        r#"{"annotations":{"io.kubernetes.cri.container-name":"app",
"io.kubernetes.cri.sandbox-name":"web-7d9","io.kubernetes.cri.sandbox-namespace":"shop",
"io.kubernetes.cri.image-name":"nginx:1.27"}}"#,
    )
    .expect("config.json");
    std::fs::write(bundle.join("init.pid"), "4242").expect("init.pid");
    let from_bundle = per_call(9, 200, || {
        black_box(read_bundle(bundles.path(), &id(7)));
    });

    println!("== container names ({CONTAINERS} containers in the table)");
    println!(
        "cache hit (NameTable::of)                 {:>10.0} ns",
        ns(hit)
    );
    println!(
        "per-tick work the names add              {:>10.0} ns  ({:.5} % of this host's /proc scan: {:.2} ms for {processes} processes)",
        ns(tick),
        100.0 * ns(tick) / ns(scan),
        ns(scan) / 1e6
    );
    println!(
        "lookup: containerd bundle on disk        {:>10.0} ns  ({:.0}x a cache hit)",
        ns(from_bundle),
        ns(from_bundle) / ns(hit)
    );
    match docker_lookup() {
        Ok(lookup) => println!(
            "lookup: Docker Engine API (unix socket)  {:>10.0} ns  ({:.0}x a cache hit)",
            ns(lookup),
            ns(lookup) / ns(hit)
        ),
        Err(why) => println!("lookup: Docker Engine API: skipped ({why})"),
    }
    match cri_lookup() {
        Ok(lookup) => println!(
            "lookup: CRI (containerd, unix socket)    {:>10.0} ns  ({:.0}x a cache hit)",
            ns(lookup),
            ns(lookup) / ns(hit)
        ),
        Err(why) => println!("lookup: CRI: skipped ({why})"),
    }
}

/// Asks the CRI of a containerd of our own (its own root, state and socket) about an id
/// it does not know: a fresh gRPC connection, ListContainers and ListPodSandbox, the
/// same exchange as naming a container.
fn cri_lookup() -> Result<Duration, String> {
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let root = dir.path().display();
    let config = format!(
        "version = 2\nroot = \"{root}/root\"\nstate = \"{root}/state\"\n\
         [grpc]\n  address = \"{root}/containerd.sock\"\n\
         [ttrpc]\n  address = \"{root}/containerd.sock.ttrpc\"\n"
    );
    std::fs::write(dir.path().join("config.toml"), config).map_err(|error| error.to_string())?;
    let mut child = Command::new("containerd")
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("containerd: {error}"))?;
    let socket = dir.path().join("containerd.sock");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let ask = || runtime.block_on(query_cri(&socket, &id(7), Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answer = ask();
    while answer.is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        answer = ask();
    }
    let timed = match answer {
        Ok(None) => Ok(per_call(5, 40, || {
            let named = ask();
            assert!(matches!(named, Ok(None)), "{named:?}");
        })),
        other => Err(format!("the CRI did not answer: {other:?}")),
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0)),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    timed
}

fn ns(duration: Duration) -> f64 {
    duration.as_nanos() as f64
}

/// Inspects a container of our own through /var/run/docker.sock.
fn docker_lookup() -> Result<Duration, String> {
    let socket = Path::new("/var/run/docker.sock");
    if !socket.exists() {
        return Err("no /var/run/docker.sock".into());
    }
    let name = format!("guardian-bench-names-{}", std::process::id());
    let started = Command::new("docker")
        .args([
            "run",
            "-d",
            "--rm",
            "--name",
            &name,
            "guardian-test:busybox",
        ])
        .args(["sleep", "600"])
        .output()
        .map_err(|error| error.to_string())?;
    if !started.status.success() {
        return Err(format!(
            "docker run: {} (the image comes from `cargo xtask test`)",
            String::from_utf8_lossy(&started.stderr).trim()
        ));
    }
    let container = String::from_utf8_lossy(&started.stdout).trim().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let timed = per_call(5, 40, || {
        let named = runtime.block_on(inspect(socket, &container, Duration::from_secs(5)));
        assert!(matches!(named, Ok(Some(_))), "{named:?}");
    });
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    Ok(timed)
}
