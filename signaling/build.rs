//! The web apps are embedded in the binary at compile time (see `src/web.rs`).
//! Cargo notices edits to files already embedded, but not files added to or
//! removed from `web/`; watching the folder makes any change there rebuild.

fn main() {
    println!("cargo:rerun-if-changed=../web");
    println!("cargo:rerun-if-changed=build.rs");
}
