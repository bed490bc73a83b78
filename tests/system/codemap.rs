//! ARCHITECTURE.md's codemap names every Rust source file of the two crates,
//! under its crate's heading: a bullet for the file itself, or for its
//! directory with the file's name in it. A module added without a line there
//! fails here.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, as paths relative to `root`.
fn rust_files(root: &Path, dir: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            rust_files(root, &relative, out);
        } else if relative.ends_with(".rs") {
            out.push(relative);
        }
    }
}

/// The bullets (`- \`path\`: text...`, with their continuation lines) of the
/// section under `heading`, as (path, text).
fn bullets(doc: &str, heading: &str) -> Vec<(String, String)> {
    let section = doc.split(heading).nth(1).unwrap_or_else(|| panic!("no {heading} in ARCHITECTURE.md"));
    let section = section.split("\n### ").next().unwrap();
    let mut found: Vec<(String, String)> = Vec::new();
    for line in section.lines() {
        if let Some(rest) = line.strip_prefix("- `") {
            let path = rest.split('`').next().unwrap().to_owned();
            found.push((path, rest.to_owned()));
        } else if let Some(last) = found.last_mut() {
            last.1.push_str(line);
        }
    }
    found
}

#[test]
fn the_codemap_names_every_source_file() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(repo.join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for (krate, heading, dirs) in [
        ("signaling", "### `signaling/`", &["src"][..]),
        ("media-relay", "### `media-relay/`", &["src", "tests"][..]),
    ] {
        let root = repo.join(krate);
        let listed = bullets(&doc, heading);
        let mut files = Vec::new();
        for dir in dirs {
            rust_files(&root, dir, &mut files);
        }
        for file in files {
            let (dir, name) = file.rsplit_once('/').unwrap();
            // A module's `mod.rs` is its directory's bullet.
            let named = listed.iter().any(|(path, text)| {
                *path == file
                    || (path.trim_end_matches('/') == dir
                        && (name == "mod.rs" || text.contains(&format!("`{name}`"))))
            });
            // Test helpers in a folder (`tests/support/mod.rs`) go with the tests that use them.
            let helper = file.starts_with("tests/") && name == "mod.rs";
            if !named && !helper {
                missing.push(format!("{krate}/{file}"));
            }
        }
    }
    assert!(missing.is_empty(), "ARCHITECTURE.md's codemap does not name: {missing:?}");
}
