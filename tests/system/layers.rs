//! Signaling's modules form layers, and a module uses only its own layer and
//! those below (ARCHITECTURE.md, "Layers"). This reads every `crate::<module>`
//! path in `signaling/src` (comments and unit tests aside) and fails on one that points up,
//! unless it is one of the few edges still to be taken out, listed below; an
//! edge on that list that has gone must leave it, so the list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. `unix_now` is the crate root's clock.
const LAYERS: &[&[&str]] = &[
    &["domain", "ids", "matcher", "password", "pdf", "telemetry", "turn", "outbox", "unix_now"],
    &["store"],
    &["schedule", "auth", "relay", "checkpoints", "metrics", "retention"],
    &["live", "cluster"],
    // `config` assembles every module's section; the app state holds it.
    &["phone", "ws", "http", "web", "config"],
    &["startup", "cli", "demo"],
];

/// Edges that still point up: to be removed, never added to.
const NOT_YET: &[(&str, &str)] = &[];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn signalings_modules_depend_only_downwards() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    // module -> modules it names, with a file that does.
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut unplaced = BTreeSet::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        let module = relative.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        if layer(&module).is_none() {
            unplaced.insert(module.clone());
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests (at the end of a file) may set up with anything.
        let code = text.lines().take_while(|l| l.trim() != "#[cfg(test)]");
        for line in code.filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let name: String =
                    line[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != module {
                    edges.entry((module.clone(), name)).or_insert_with(|| relative.clone());
                }
            }
        }
    }
    assert!(unplaced.is_empty(), "modules with no layer in tests/system/layers.rs: {unplaced:?}");
    let mut upward = Vec::new();
    for ((from, to), file) in &edges {
        let (Some(low), Some(high)) = (layer(from), layer(to)) else {
            upward.push(format!("{file}: {from} -> {to} (unknown module)"));
            continue;
        };
        if high > low && !NOT_YET.contains(&(from.as_str(), to.as_str())) {
            upward.push(format!("{file}: {from} -> {to}"));
        }
    }
    assert!(upward.is_empty(), "imports against the layers:\n{}", upward.join("\n"));
    let gone: Vec<_> = NOT_YET
        .iter()
        .filter(|(from, to)| !edges.contains_key(&(from.to_string(), to.to_string())))
        .collect();
    assert!(gone.is_empty(), "these edges are gone: take them off NOT_YET: {gone:?}");
}
