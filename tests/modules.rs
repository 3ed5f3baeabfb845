//! The module graph of every crate in the workspace has no cycles: data flows
//! one way (recipe → base → assemble → layer → image → output), and a module
//! never reaches back up to one that depends on it.
//!
//! Cargo already forbids cycles between crates; this test keeps each crate's
//! modules acyclic. An edge `a → b` means a file of module `a` names an item
//! of module `b` (`use`, or a path in code) outside `#[cfg(test)]`. A module
//! naming its own ancestors adds no edge: a child is part of its parent (it
//! sees the parent's private items, as Rust's privacy has it), so `sbom::spdx`
//! using `sbom::Inventory` is the `sbom` stage talking to itself, while `sbom`
//! using `build` and `build` using `sbom` is a cycle.
//!
//! Written here rather than run as `cargo modules dependencies --acyclic`
//! because that tool builds rust-analyzer from source, minutes of CI time on
//! every clean clone, while a `syn` walk of the sources takes a second.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

type Module = Vec<String>;

/// Every module of the crate whose root is `src/lib.rs` or `src/main.rs`,
/// with the file that holds it.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            out.insert(module, path);
        }
    }
    out
}

/// Collects the modules a file names, resolved against the module tree.
struct Uses<'a> {
    known: &'a BTreeMap<Module, PathBuf>,
    /// The file's module, then any inline modules around the current item.
    here: Module,
    found: BTreeSet<Module>,
}

impl Uses<'_> {
    fn add(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else {
            return;
        };
        let mut absolute = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.here.clone(),
            "super" => {
                let mut m = self.here.clone();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    m.pop();
                    rest = &rest[1..];
                }
                m.extend(rest.iter().cloned());
                return self.resolve(m);
            }
            // A child module named without `self::` (2018 paths).
            name => {
                let mut child = self.here.clone();
                child.push(name.to_owned());
                if !self.known.contains_key(&child) || segments.len() < 2 {
                    return;
                }
                self.here.clone()
            }
        };
        let skip = usize::from(matches!(first.as_str(), "crate" | "self"));
        absolute.extend(segments[skip..].iter().cloned());
        self.resolve(absolute);
    }

    /// The longest prefix of `path` that is a module of the crate.
    fn resolve(&mut self, mut path: Module) {
        while !path.is_empty() && !self.known.contains_key(&path) {
            path.pop();
        }
        if self.known.contains_key(&path) {
            self.found.insert(path);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                if n.ident != "self" {
                    prefix.push(n.ident.to_string());
                }
                self.add(prefix);
                if n.ident != "self" {
                    prefix.pop();
                }
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                self.add(prefix);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => self.add(prefix),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test")
    })
}

impl<'ast> Visit<'ast> for Uses<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Impl(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        // Inline modules shift what `self` and `super` mean.
        if m.content.is_some() {
            self.here.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.here.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if path.leading_colon.is_none() {
            self.add(&segments);
        }
        syn::visit::visit_path(self, path);
    }
}

/// The module graph of a crate: each module and the modules it names.
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let known = modules(src);
    let mut out = BTreeMap::new();
    for (module, file) in &known {
        let text = fs::read_to_string(file).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut uses = Uses {
            known: &known,
            here: module.clone(),
            found: BTreeSet::new(),
        };
        uses.visit_file(&ast);
        uses.found.retain(|used| !module.starts_with(used));
        out.insert(module.clone(), uses.found);
    }
    out
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'g> {
        graph: &'g BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'g Module, usize>,
        low: BTreeMap<&'g Module, usize>,
        stack: Vec<&'g Module>,
        on_stack: BTreeSet<&'g Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g Module) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.graph[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.out
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

fn crate_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![root.join("src")];
    for entry in fs::read_dir(root.join("crates")).unwrap() {
        out.push(entry.unwrap().path().join("src"));
    }
    out.sort();
    out
}

#[test]
fn no_module_cycles() {
    let mut report = String::new();
    for src in crate_sources() {
        for component in cycles(&graph(&src)) {
            let names: Vec<String> = component.iter().map(name).collect();
            report.push_str(&format!(
                "{}: a cycle of {} modules: {}\n",
                src.display(),
                names.len(),
                names.join(", ")
            ));
        }
    }
    assert!(report.is_empty(), "module cycles:\n{report}");
}

/// The check sees the edges it must: a cycle written into a scratch crate is
/// found, through `use`, `super::` and a child named without `self::`.
#[test]
fn a_cycle_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    fs::create_dir(src.join("stage")).unwrap();
    fs::write(src.join("lib.rs"), "mod stage;\nmod down;\n").unwrap();
    fs::write(
        src.join("stage/mod.rs"),
        "mod part;\npub fn run() { part::go() }\n",
    )
    .unwrap();
    fs::write(
        src.join("stage/part.rs"),
        "use crate::down::Thing;\npub fn go() {}\n",
    )
    .unwrap();
    fs::write(
        src.join("down.rs"),
        "pub struct Thing;\n#[cfg(test)]\nmod tests { use crate::stage::run; }\n",
    )
    .unwrap();
    assert!(
        cycles(&graph(src)).is_empty(),
        "test-only edges do not count"
    );

    fs::write(
        src.join("down.rs"),
        "pub struct Thing;\nfn f() { super::stage::run() }\n",
    )
    .unwrap();
    let found = cycles(&graph(src));
    let names: Vec<Vec<String>> = found.iter().map(|c| c.iter().map(name).collect()).collect();
    assert_eq!(names, [["down", "stage", "stage::part"]]);
}
