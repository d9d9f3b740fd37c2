//! The architecture check of `cargo xtask test` (and `cargo xtask layers`): no import
//! cycle between the guardian's modules, and no import from a lower layer to a higher
//! one.
//!
//! The guardian's sources are parsed with `syn`; every path a module names (`use`
//! declarations and paths in its code, `#[cfg(test)]` code left out) is resolved to the
//! module that defines the item, following re-exports. An import between two modules
//! that are not nested in each other counts as an edge between the two siblings under
//! their closest common parent (`policy::executor` -> `policy::ledger`, or
//! `http::metrics::kills` -> `daemon::state` as `http` -> `daemon`). A cycle is a
//! strongly connected set of siblings (petgraph's Tarjan). Layers are ranked below; a
//! top-level module may import its own rank or lower ones.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use petgraph::{algo::tarjan_scc, graph::DiGraph};
use syn::visit::Visit;

/// Top-level modules by layer, lowest first: data flows from the sources through the
/// model to policy and trends, and out through the published snapshot to the outputs.
/// `config` (settings) and `classify` (host vs container, from cgroup paths) are the
/// vocabulary below the model, with `redact` (what any output may show of a command
/// line, down to the model's own serialization); the kill log (`audit`) sits below policy because policy
/// writes each intent to it before any signal. `names` (container names from the
/// runtimes' sockets) reads the outside world beside the sources. `fuzzing` (the fuzz
/// targets' entry points, built only for tests and the fuzzer) reaches into every parser.
/// `hooks` (commands and webhooks told about kills, OOM kills, leaks, imminence and
/// pressure) is an output reading the policy's and trends' records; the snapshot's
/// telemetry holds its counters, and the daemon wires it.
const LAYERS: &[&[&str]] = &[
    &["config"],
    &["classify", "redact"],
    &["model"],
    &["sources", "names"],
    &["audit"],
    &["policy", "trends"],
    &["hooks"],
    &["snapshot"],
    &["http"],
    &["daemon"],
    &["cli"],
    &["fuzzing"],
];

/// A module path below the crate root (`["policy", "executor"]`); the root is empty.
type ModPath = Vec<String>;

#[derive(Default)]
struct Module {
    children: BTreeSet<String>,
    /// Names brought in by `use` (including re-exports): name -> absolute path.
    imports: BTreeMap<String, Vec<String>>,
    /// Paths named in the module, as written, with `use` targets made absolute.
    uses: Vec<Vec<String>>,
}

/// Checks `guardian/src` under `root`; fails naming each cycle and layer violation with
/// one import that makes it.
pub fn check(root: &Path) -> anyhow::Result<()> {
    let report = analyse(&root.join("guardian/src"))?;
    print!("{}", report.text);
    if report.problems > 0 {
        bail!(
            "{} architecture problem(s) in guardian/src (see above)",
            report.problems
        );
    }
    Ok(())
}

struct Report {
    text: String,
    problems: usize,
}

fn analyse(src: &Path) -> anyhow::Result<Report> {
    let mut modules: BTreeMap<ModPath, Module> = BTreeMap::new();
    load(&src.join("lib.rs"), Vec::new(), true, &mut modules)?;
    // Edges between siblings, each with one example import.
    let mut edges: BTreeMap<(ModPath, ModPath), String> = BTreeMap::new();
    for (from, module) in &modules {
        for path in &module.uses {
            let Some(absolute) = absolute(from, path, &modules) else {
                continue;
            };
            let target = defining_module(&absolute, &modules, 0);
            let common = from.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == target.len() {
                continue; // nested in each other: a parent and its descendants
            }
            let a = from[..=common].to_vec();
            let b = target[..=common].to_vec();
            edges
                .entry((a, b))
                .or_insert_with(|| format!("{} uses {}", show(from), absolute.join("::")));
        }
    }
    let mut text = String::new();
    let mut problems = 0;
    // Cycles.
    let mut graph = DiGraph::<ModPath, ()>::new();
    let mut index = BTreeMap::new();
    for (a, b) in edges.keys() {
        for node in [a, b] {
            index
                .entry(node.clone())
                .or_insert_with(|| graph.add_node(node.clone()));
        }
        graph.add_edge(index[a], index[b], ());
    }
    for component in tarjan_scc(&graph) {
        if component.len() < 2 {
            continue;
        }
        problems += 1;
        let members: BTreeSet<&ModPath> = component.iter().map(|&n| &graph[n]).collect();
        let names: Vec<String> = members.iter().map(|m| show(m)).collect();
        let _ = writeln!(text, "import cycle between {}:", names.join(", "));
        for ((a, b), example) in &edges {
            if members.contains(a) && members.contains(b) {
                let _ = writeln!(text, "  {} -> {}: {example}", show(a), show(b));
            }
        }
    }
    // Layers.
    let rank = |name: &str| LAYERS.iter().position(|layer| layer.contains(&name));
    for ((a, b), example) in &edges {
        if a.len() != 1 {
            continue;
        }
        match (rank(&a[0]), rank(&b[0])) {
            (Some(from), Some(to)) if to > from => {
                problems += 1;
                let _ = writeln!(
                    text,
                    "layer violation: {} imports the higher layer {}: {example}",
                    a[0], b[0]
                );
            }
            (Some(_), Some(_)) => {}
            _ => {
                problems += 1;
                let _ = writeln!(
                    text,
                    "module {} or {} has no layer in xtask/src/layers.rs: {example}",
                    a[0], b[0]
                );
            }
        }
    }
    let _ = writeln!(
        text,
        "architecture: {} modules, {} sibling imports, {problems} problem(s)",
        modules.len(),
        edges.len()
    );
    Ok(Report { text, problems })
}

fn show(path: &ModPath) -> String {
    if path.is_empty() {
        "crate".to_string()
    } else {
        path.join("::")
    }
}

/// Parses the module in `file` (and its file children) into `modules`.
fn load(
    file: &Path,
    path: ModPath,
    owns_dir: bool,
    modules: &mut BTreeMap<ModPath, Module>,
) -> anyhow::Result<()> {
    let source =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let parsed = syn::parse_file(&source).with_context(|| format!("parsing {}", file.display()))?;
    // `a/mod.rs` and `lib.rs` keep children in `a/`; `a/b.rs` keeps them in `a/b/`.
    let dir: PathBuf = if owns_dir {
        file.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        file.with_extension("")
    };
    let file_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    items(&parsed.items, path, &dir, &file_dir, modules)
}

/// `dir` holds the children of the module being read; `file_dir` is the directory of
/// its source file, against which a `#[path = "..."]` attribute resolves.
fn items(
    list: &[syn::Item],
    path: ModPath,
    dir: &Path,
    file_dir: &Path,
    modules: &mut BTreeMap<ModPath, Module>,
) -> anyhow::Result<()> {
    let mut module = Module::default();
    let mut collector = Collector::default();
    for item in list {
        if is_test(item_attrs(item)) {
            continue;
        }
        match item {
            syn::Item::Mod(inner) => {
                let name = inner.ident.to_string();
                module.children.insert(name.clone());
                let mut child = path.clone();
                child.push(name.clone());
                if let Some((_, content)) = &inner.content {
                    let inner_dir = dir.join(&name);
                    items(content, child, &inner_dir, &inner_dir, modules)?;
                } else if let Some(target) = path_attribute(&inner.attrs) {
                    load(&file_dir.join(target), child, false, modules)?;
                } else {
                    let flat = dir.join(format!("{name}.rs"));
                    if flat.exists() {
                        load(&flat, child, false, modules)?;
                    } else {
                        load(&dir.join(&name).join("mod.rs"), child, true, modules)?;
                    }
                }
            }
            syn::Item::Use(declaration) => {
                flatten(&declaration.tree, Vec::new(), &mut module);
            }
            other => collector.visit_item(other),
        }
    }
    module.uses.extend(collector.paths);
    modules.insert(path, module);
    Ok(())
}

/// The file named by a `#[path = "..."]` attribute, if there is one.
fn path_attribute(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| match &attr.meta {
        syn::Meta::NameValue(pair) if pair.path.is_ident("path") => match &pair.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) => Some(text.value()),
            _ => None,
        },
        _ => None,
    })
}

/// Adds a `use` tree's names and paths to `module`.
fn flatten(tree: &syn::UseTree, prefix: Vec<String>, module: &mut Module) {
    match tree {
        syn::UseTree::Path(p) => {
            let mut next = prefix;
            next.push(p.ident.to_string());
            flatten(&p.tree, next, module);
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut full = prefix;
            if name != "self" {
                full.push(name.clone());
            }
            let alias = full.last().cloned().unwrap_or(name);
            module.imports.insert(alias, full.clone());
            module.uses.push(full);
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix;
            if r.ident != "self" {
                full.push(r.ident.to_string());
            }
            module.imports.insert(r.rename.to_string(), full.clone());
            module.uses.push(full);
        }
        syn::UseTree::Glob(_) => module.uses.push(prefix),
        syn::UseTree::Group(g) => {
            for item in &g.items {
                flatten(item, prefix.clone(), module);
            }
        }
    }
}

/// Every path in a module's code, `#[cfg(test)]` items and nested modules left out.
#[derive(Default)]
struct Collector {
    paths: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.paths
            .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }
    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}
    fn visit_item_use(&mut self, _: &'ast syn::ItemUse) {}
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_test(item_attrs(item)) {
            syn::visit::visit_item(self, item);
        }
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]`: code that exists only in unit tests.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .meta
                .require_list()
                .is_ok_and(|list| list.tokens.to_string() == "test")
    })
}

/// `path` as written in module `from`, made absolute from the crate root; `None` for
/// paths outside the crate (std, dependencies, locals).
fn absolute(
    from: &ModPath,
    path: &[String],
    modules: &BTreeMap<ModPath, Module>,
) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut out: Vec<String> = match first.as_str() {
        "crate" => return Some(path[1..].to_vec()),
        "self" => from.clone(),
        "super" => {
            let mut base = from.clone();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            return Some(base);
        }
        name => {
            let module = modules.get(from)?;
            if module.children.contains(name) {
                let mut base = from.clone();
                base.push(name.to_string());
                base
            } else if let Some(target) = module.imports.get(name)
                && target.first() != Some(first)
            {
                // An imported name: what it points at, relative to `from`.
                let mut base = absolute(from, target, modules)?;
                base.extend(path[1..].iter().cloned());
                return Some(base);
            } else {
                return None;
            }
        }
    };
    out.extend(path[1..].iter().cloned());
    Some(out)
}

/// The module that defines the item at `absolute`, following re-exports.
fn defining_module(
    absolute: &[String],
    modules: &BTreeMap<ModPath, Module>,
    depth: usize,
) -> ModPath {
    let mut current: ModPath = Vec::new();
    for (i, segment) in absolute.iter().enumerate() {
        let Some(module) = modules.get(&current) else {
            break;
        };
        if module.children.contains(segment) {
            current.push(segment.clone());
        } else if let Some(target) = module.imports.get(segment)
            && depth < 16
            && let Some(mut next) = self::absolute(&current, target, modules)
        {
            next.extend(absolute[i + 1..].iter().cloned());
            return defining_module(&next, modules, depth + 1);
        } else {
            break;
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(file, text).expect("write");
        }
        dir
    }

    #[test]
    fn finds_a_cycle_through_a_re_export() {
        let dir = tree(&[
            ("lib.rs", "mod config; mod model;"),
            ("config.rs", "pub fn f() { crate::model::g(); }"),
            (
                "model/mod.rs",
                "mod inner; pub use inner::g; use crate::config::f;",
            ),
            (
                "model/inner.rs",
                "pub fn g() { super::super::config::f(); }",
            ),
        ]);
        let report = analyse(dir.path()).expect("analyse");
        assert!(
            report.text.contains("import cycle between config, model"),
            "{}",
            report.text
        );
        assert!(
            report
                .text
                .contains("layer violation: config imports the higher layer model")
        );
    }

    #[test]
    fn siblings_under_a_parent_and_test_code_are_told_apart() {
        let dir = tree(&[
            ("lib.rs", "mod policy; mod model;"),
            (
                "model.rs",
                "pub struct M; #[cfg(test)] fn t() { crate::policy::a::A; }",
            ),
            (
                "policy/mod.rs",
                "mod a; mod b; pub use a::A; use crate::model::M;",
            ),
            ("policy/a.rs", "pub struct A; fn f(_: super::b::B) {}"),
            ("policy/b.rs", "pub struct B; fn f(_: super::A) {}"),
        ]);
        let report = analyse(dir.path()).expect("analyse");
        assert!(
            report
                .text
                .contains("import cycle between policy::a, policy::b"),
            "{}",
            report.text
        );
        assert_eq!(report.problems, 1, "{}", report.text);
    }
}
