//! `cargo xtask check-deploy`: the deployment files against maintained schemas and
//! linters from the package registries, offline once installed (into target/deploy-check,
//! pinned versions, a second run installs nothing):
//! - generated Kubernetes files equal to what config/ generates (`manifests --check`);
//! - the plain manifests against the Kubernetes API schemas (PyPI kubernetes-validate,
//!   strict: unknown fields fail);
//! - ServiceMonitor and PrometheusRule against the prometheus-operator CRD schemas (npm
//!   @kubernetes-models/prometheus-operator);
//! - both Grafana dashboards against the Dashboard type of Grafana's own @grafana/schema
//!   (as JSON schema by ts-json-schema-generator, checked with ajv), and their inputs;
//! - the Helm chart through `helm lint` (Helm's Go code in PyPI helm-sdkpy), with the
//!   default values and with every switch flipped.

use std::path::Path;

use anyhow::Context as _;

use crate::{cmd, manifests};

const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
const HELM_SDKPY: &str = "helm-sdkpy==0.1.32";
/// The lint script reads values.yaml to lint the chart with other values too.
const PYYAML: &str = "PyYAML==6.0.2";
const NPM_PACKAGES: [&str; 4] = [
    "@kubernetes-models/prometheus-operator@6.0.0",
    "@grafana/schema@13.2.3",
    "ts-json-schema-generator@2.4.0",
    "ajv@8.20.0",
];
/// Plain manifests of core kinds (the CRD kinds are checked apart).
const CORE_MANIFESTS: [&str; 4] = [
    "deploy/kubernetes/namespace.yaml",
    "deploy/kubernetes/configmap.yaml",
    "deploy/kubernetes/daemonset.yaml",
    "deploy/kubernetes/service.yaml",
];
const CRD_MANIFESTS: [&str; 2] = [
    "deploy/kubernetes/servicemonitor.yaml",
    "deploy/kubernetes/prometheusrule.yaml",
];
const DASHBOARDS: [&str; 2] = ["config/dashboard.json", "config/fleet-dashboard.json"];

pub fn check_deploy(root: &Path) -> anyhow::Result<()> {
    manifests::manifests(root, true)?;
    let work = root.join("target/deploy-check");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let python = venv(root, &work.join("venv"), &[KUBERNETES_VALIDATE])?;
    let mut args = vec!["--strict"];
    args.extend(CORE_MANIFESTS);
    cmd::run(
        root,
        "Kubernetes schemas",
        &work
            .join("venv/bin/kubernetes-validate")
            .display()
            .to_string(),
        &args,
    )?;

    let npm = work.join("npm");
    npm_install(root, &npm)?;
    for script in ["validate_crds.mjs", "validate_dashboards.mjs"] {
        let from = root.join("xtask/deploy-check").join(script);
        std::fs::copy(&from, npm.join(script))
            .with_context(|| format!("copying {}", from.display()))?;
    }
    let mut pairs = Vec::new();
    let mut jsons = Vec::new();
    for manifest in CRD_MANIFESTS {
        let json = work.join(
            Path::new(manifest)
                .with_extension("json")
                .file_name()
                .unwrap_or_default(),
        );
        pairs.push(format!(
            "{}={}",
            root.join(manifest).display(),
            json.display()
        ));
        jsons.push(json.display().to_string());
    }
    let converter = root.join("xtask/deploy-check/yaml_to_json.py");
    let mut args = vec![converter.display().to_string()];
    args.extend(pairs);
    cmd::run(root, "YAML to JSON", &python, &as_strs(&args))?;
    let mut args = vec![npm.join("validate_crds.mjs").display().to_string()];
    args.extend(jsons);
    cmd::run(
        root,
        "prometheus-operator CRD schemas",
        "node",
        &as_strs(&args),
    )?;

    let schema = work.join("dashboard.schema.json");
    let types = npm.join("node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts");
    let generator = npm.join("node_modules/.bin/ts-json-schema-generator");
    cmd::run(
        root,
        "Grafana dashboard schema",
        &generator.display().to_string(),
        &as_strs(&[
            "--path".into(),
            types.display().to_string(),
            "--type".into(),
            "Dashboard".into(),
            // Panels' plugin options and the Prometheus annotation fields (expr,
            // titleFormat, step) are not in the core type: extra keys pass, types,
            // enums and required keys are checked.
            "--additional-properties".into(),
            "--no-type-check".into(),
            "-o".into(),
            schema.display().to_string(),
        ]),
    )?;
    let mut args = vec![
        npm.join("validate_dashboards.mjs").display().to_string(),
        schema.display().to_string(),
    ];
    args.extend(
        DASHBOARDS
            .iter()
            .map(|file| root.join(file).display().to_string()),
    );
    cmd::run(root, "Grafana dashboards", "node", &as_strs(&args))?;

    // helm-sdkpy declares Python >= 3.12, but its Go library loads and lints through
    // ctypes on Debian 12's 3.11 as well, so the declaration is overridden rather than
    // the chart left unchecked.
    let helm = venv(
        root,
        &work.join("venv-helm"),
        &[HELM_SDKPY, PYYAML, "--ignore-requires-python"],
    )?;
    cmd::run(
        root,
        "helm lint",
        &helm,
        &as_strs(&[
            root.join("xtask/deploy-check/helm_lint.py")
                .display()
                .to_string(),
            root.join("deploy/helm/guardian").display().to_string(),
        ]),
    )?;
    println!("check-deploy: manifests, CRD resources, dashboards and chart are valid");
    Ok(())
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A virtualenv at `dir` made with `python`, with `packages`; returns its python.
fn venv(root: &Path, dir: &Path, packages: &[&str]) -> anyhow::Result<String> {
    let bin = dir.join("bin/python");
    let marker = dir.join(".installed");
    let wanted = packages.join(" ");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        let path = dir.display().to_string();
        cmd::run(root, "virtualenv", "python3", &["-m", "venv", &path])?;
        let mut args = vec!["-m", "pip", "install", "--quiet"];
        args.extend(packages);
        cmd::run(root, "pip install", &bin.display().to_string(), &args)?;
        std::fs::write(&marker, &wanted)
            .with_context(|| format!("writing {}", marker.display()))?;
    }
    Ok(bin.display().to_string())
}

fn npm_install(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let marker = dir.join(".installed");
    let wanted = NPM_PACKAGES.join(" ");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join("package.json"),
        r#"{"name": "guardian-deploy-check", "private": true, "type": "module"}"#,
    )
    .context("writing package.json")?;
    let mut args = vec!["install", "--silent", "--no-audit", "--no-fund", "--prefix"];
    let prefix = dir.display().to_string();
    args.push(&prefix);
    args.extend(NPM_PACKAGES);
    cmd::run(root, "npm install", "npm", &args)?;
    std::fs::write(&marker, &wanted).with_context(|| format!("writing {}", marker.display()))
}
