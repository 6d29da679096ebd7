//! Embeds `infra/migrations/*.sql` into the crate at compile time.
//!
//! Generates `$OUT_DIR/embedded_migrations.rs` holding a sorted
//! `&[(file_name, contents)]` slice built from `include_str!`, so Lambdas and the CLI
//! carry the migrations in their binary. Parsing and validation of the file names
//! happen at run time in `Migrator::embedded()` (and in a unit test), so a badly named
//! file never breaks the build of every crate that depends on this one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let infra = manifest_dir.join("../../infra");
    let dir = infra.join("migrations");
    // Watching `infra/` (which exists) rather than `infra/migrations/` (which may not yet)
    // keeps cargo from re-running this script on every build while the folder is absent.
    println!("cargo:rerun-if-changed={}", infra.display());
    if dir.is_dir() {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let is_sql = path.extension().is_some_and(|e| e == "sql");
            if !is_sql || !path.is_file() {
                continue;
            }
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                files.push((name.to_owned(), canonical(&path)));
            }
        }
    }
    files.sort();

    let mut out = String::from(
        "/// `(file name, contents)` of every `infra/migrations/*.sql`, sorted by file name.\n",
    );
    out.push_str("pub(crate) static EMBEDDED_MIGRATIONS: &[(&str, &str)] = &[\n");
    for (name, path) in &files {
        // `{:?}` yields a valid Rust string literal for both the name and the path.
        if writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .is_err()
        {
            panic!("writing to a String cannot fail");
        }
    }
    out.push_str("];\n");

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join("embedded_migrations.rs"), out) {
        panic!("cannot write embedded_migrations.rs: {e}");
    }
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
