//! `ballast plan` end to end: the example files decide as documented, and a
//! bad file is refused with its name, the field and the value.

use std::{path::PathBuf, process::Command};

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/plan");
    ["assets.toml", "models.toml", "ips.toml", "accounts.toml", "market.toml"].iter().map(|f| dir.join(f)).collect()
}

fn ballast(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ballast")).args(args).output().expect("ballast runs")
}

#[test]
fn the_examples_plan_a_harvest_and_a_deposit() {
    let files = examples();
    let args: Vec<&std::ffi::OsStr> = std::iter::once("plan".as_ref()).chain(files.iter().map(|f| f.as_os_str())).collect();
    let out = ballast(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("trade sell 300 GEQ at 100 = 30000 (HarvestLoss)"), "{table}");
    assert!(table.contains("trade buy 400 GEQ2 at 50 = 20000 (HarvestReplace)"), "{table}");
    assert!(table.contains("harvested losses 3000, estimated tax -1200.00"), "{table}");
    assert!(table.contains("trigger Deposit (acted on): 10000 to invest"), "{table}");

    let mut json_args = args.clone();
    json_args.push("--json".as_ref());
    let out = ballast(&json_args);
    let decisions: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(decisions.as_array().map(Vec::len), Some(2));
    assert_eq!(decisions[0]["ips"]["document_hash"], "9f2c1a0e6b7d4c3f8a5e2d1c0b9a8f7e6d5c4b3a29180706f5e4d3c2b1a09f8e");
    assert_eq!(decisions[0]["input_digest"].as_str().map(str::len), Some(64));
}

#[test]
fn a_bad_value_names_the_file_the_field_and_the_value() {
    let dir = std::env::temp_dir().join(format!("ballast-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = examples();
    let bad_toml = dir.join("accounts.toml");
    std::fs::write(&bad_toml, std::fs::read_to_string(&files[3]).unwrap().replace("cash = \"5000\"", "cash = \"five thousand\"")).unwrap();
    files[3] = bad_toml.clone();
    let args: Vec<&std::ffi::OsStr> = std::iter::once("plan".as_ref()).chain(files.iter().map(|f| f.as_os_str())).collect();
    let out = ballast(&args);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&bad_toml.display().to_string()) && err.contains("cash = \"five thousand\""), "{err}");

    let bad_json = dir.join("accounts.json");
    let accounts = r#"{"accounts":[{"id":1,"household":"h","kind":"taxable","ips":"ips-1","cash":"1","lots":[{"id":"x","asset":"GEQ","quantity":"many","cost":"1","acquired":"2026-01-01"}]}]}"#;
    std::fs::write(&bad_json, accounts).unwrap();
    files[3] = bad_json.clone();
    let args: Vec<&std::ffi::OsStr> = std::iter::once("plan".as_ref()).chain(files.iter().map(|f| f.as_os_str())).collect();
    let err = String::from_utf8(ballast(&args).stderr).unwrap();
    assert!(err.contains("accounts.json: field `accounts[0].lots[0].quantity`: invalid value: string \"many\""), "{err}");

    // What the engine refuses names the file that gave it (the engine
    // sees the files merged).
    std::fs::write(&bad_json, r#"{"accounts":[{"id":1,"household":"h","kind":"taxable","ips":"nope","cash":"1"}]}"#).unwrap();
    let err = String::from_utf8(ballast(&args).stderr).unwrap();
    assert!(err.contains(&format!("{}: account 1 refers to the unknown IPS `nope`", bad_json.display())), "{err}");
    std::fs::write(&bad_json, r#"{"accounts":[{"id":1,"household":"h","kind":"taxable","ips":"ips-1","cash":"-1"}]}"#).unwrap();
    let err = String::from_utf8(ballast(&args).stderr).unwrap();
    assert!(err.contains(&format!("{}: account 1: field `cash` has the invalid value -1", bad_json.display())), "{err}");
    // A lot names its account's file; an asset defined twice, both files.
    std::fs::write(&bad_json, r#"{"accounts":[{"id":1,"household":"h","kind":"taxable","ips":"ips-1","cash":"1","lots":[{"id":"x","asset":"GEQ","quantity":"-2","cost":"1","acquired":"2026-01-01"}]}]}"#).unwrap();
    let err = String::from_utf8(ballast(&args).stderr).unwrap();
    assert!(err.contains(&format!("{}: lot x of account 1: field `quantity` has the invalid value -2", bad_json.display())), "{err}");
    let extra = dir.join("more-assets.toml");
    std::fs::write(&extra, "[[assets]]\nid = \"GEQ\"\nclass = \"equity\"\nquantum = \"0.01\"\n").unwrap();
    let mut with_extra = examples();
    with_extra.push(extra.clone());
    let args: Vec<&std::ffi::OsStr> = std::iter::once("plan".as_ref()).chain(with_extra.iter().map(|f| f.as_os_str())).collect();
    let err = String::from_utf8(ballast(&args).stderr).unwrap();
    assert!(err.contains(&format!("{} and {}: asset `GEQ` is defined twice", with_extra[0].display(), extra.display())), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
