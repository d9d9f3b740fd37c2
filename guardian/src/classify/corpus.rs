//! The corpus test: every real-world layout in `tests/fixtures/cgroup-paths/*.tsv`
//! (collected from runtimes' docs and code and from peers' fixtures, each row naming its
//! source), classified from v1, hybrid and v2 `/proc/PID/cgroup` lines.

use std::path::PathBuf;

use super::{CgroupLine, Classification, classify};

/// One row of a corpus file.
struct Row {
    line: usize,
    path: String,
    kind: String,
    runtime: Option<String>,
    id_or_unit: Option<String>,
    pod_uid: Option<String>,
    qos: Option<String>,
}

fn field(value: &str) -> Option<String> {
    (value != "-").then(|| value.to_string())
}

fn rows() -> Vec<Row> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/cgroup-paths");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .map(|entry| entry.expect("corpus dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "tsv"))
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read corpus file");
        for (index, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 8, "{}:{}: 8 columns", file.display(), index + 1);
            rows.push(Row {
                line: index + 1,
                path: cols[0].to_string(),
                kind: cols[1].to_string(),
                runtime: field(cols[2]),
                id_or_unit: field(cols[3]),
                pod_uid: field(cols[4]),
                qos: field(cols[5]),
            });
        }
    }
    rows
}

/// What a classification says, in the corpus's words.
fn describe(
    class: &Classification,
) -> (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    match class {
        Classification::Host { unit } => ("host".into(), None, unit.clone(), None, None),
        Classification::Container {
            runtime,
            id,
            pod_uid,
            qos,
        } => (
            "container".into(),
            Some(runtime.as_str().into()),
            Some(id.clone()),
            pod_uid.clone(),
            qos.map(|qos| qos.as_str().into()),
        ),
        Classification::Group {
            runtime,
            pod_uid,
            qos,
        } => (
            "group".into(),
            Some(runtime.as_str().into()),
            None,
            pod_uid.clone(),
            qos.map(|qos| qos.as_str().into()),
        ),
        Classification::Unknown => ("unknown".into(), None, None, None, None),
    }
}

fn line(hierarchy: u32, controllers: &str, path: &str) -> CgroupLine {
    CgroupLine {
        hierarchy,
        controllers: controllers
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        path: path.to_string(),
    }
}

#[test]
fn every_corpus_layout_classifies_as_expected_on_v1_hybrid_and_v2() {
    let rows = rows();
    assert!(rows.len() >= 100, "corpus has {} rows", rows.len());
    let mut wrong = Vec::new();
    for row in &rows {
        let expected = (
            row.kind.clone(),
            row.runtime.clone(),
            row.id_or_unit.clone(),
            row.pod_uid.clone(),
            row.qos.clone(),
        );
        let v2 = [line(0, "", &row.path)];
        let v1 = [
            line(12, "pids", &row.path),
            line(4, "memory", &row.path),
            line(1, "name=systemd", &row.path),
        ];
        let mut hybrid = v1.to_vec();
        hybrid.push(line(0, "", &row.path));
        for (form, lines) in [("v2", &v2[..]), ("v1", &v1[..]), ("hybrid", &hybrid[..])] {
            let got = describe(&classify(lines));
            if got != expected {
                wrong.push(format!(
                    "line {} {form} {}: expected {expected:?}, got {got:?}",
                    row.line, row.path
                ));
                break;
            }
        }
    }
    println!(
        "corpus: {} of {} right",
        rows.len() - wrong.len(),
        rows.len()
    );
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
