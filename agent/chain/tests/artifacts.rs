//! The Rust bindings are generated from `contracts/artifacts/`, committed so
//! that `cargo build` needs no Node. This test rebuilds the contracts with
//! forge and fails when the committed artifacts differ from a fresh build.

use std::{path::Path, process::Command};

#[test]
fn committed_artifacts_match_a_fresh_forge_build() {
    let contracts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts");
    let forge = contracts.join("node_modules/.bin/forge");
    assert!(forge.is_file(), "{} is missing: run scripts/setup.sh (npm ci in contracts/)", forge.display());

    let scratch = std::env::temp_dir().join(format!("ballast-artifacts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let out = scratch.join("out");
    let fresh = scratch.join("artifacts");

    let build = Command::new(&forge)
        .current_dir(&contracts)
        .args(["build", "--skip", "test", "--skip", "script", "--out"])
        .arg(&out)
        .arg("--cache-path")
        .arg(scratch.join("cache"))
        .output()
        .expect("forge runs");
    assert!(
        build.status.success(),
        "forge build failed:\n{}\n{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let export = Command::new("node")
        .current_dir(&contracts)
        .arg("bin/export-artifacts")
        .arg(&out)
        .arg(&fresh)
        .output()
        .expect("node runs");
    assert!(export.status.success(), "export failed: {}", String::from_utf8_lossy(&export.stderr));

    let names = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let committed = contracts.join("artifacts");
    assert_eq!(names(&committed), names(&fresh), "the set of artifacts changed");
    let mut stale = Vec::new();
    for name in names(&fresh) {
        if std::fs::read(committed.join(&name)).unwrap() != std::fs::read(fresh.join(&name)).unwrap() {
            stale.push(name);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        stale.is_empty(),
        "stale artifacts {stale:?}: run `cd contracts && node_modules/.bin/forge build && bin/export-artifacts` and commit"
    );
}
