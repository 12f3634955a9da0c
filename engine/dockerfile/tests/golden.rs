//! Golden corpus: every `tests/data/*.Dockerfile` beside its expected AST (`*.json`) or
//! expected error (`*.err`). A missing expectation is written on first run;
//! `UPDATE_EXPECT=1` rewrites them all. Read a new expectation before committing it:
//! these files are the parser's spec.

use std::fs;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// What the parser makes of one file, as the text stored beside it.
fn render(text: &str) -> (&'static str, String) {
    match berth_dockerfile::parse(text) {
        Ok(dockerfile) => (
            "json",
            serde_json::to_string_pretty(&dockerfile).expect("AST serializes") + "\n",
        ),
        Err(error) => ("err", format!("{error}\n")),
    }
}

#[test]
fn golden_corpus() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut inputs: Vec<PathBuf> = fs::read_dir(data_dir())
        .expect("tests/data exists")
        .map(|entry| entry.expect("readable tests/data").path())
        .filter(|path| path.to_string_lossy().ends_with(".Dockerfile"))
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 10,
        "the golden corpus lost its files: {}",
        inputs.len()
    );
    let mut failures = Vec::new();
    for input in &inputs {
        let text = fs::read_to_string(input).expect("readable input");
        let (extension, actual) = render(&text);
        let expected_path = input.with_extension(extension);
        let other = input.with_extension(if extension == "json" { "err" } else { "json" });
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual && !other.exists() => {}
            Ok(_) | Err(_) if update || (!expected_path.exists() && !other.exists()) => {
                fs::write(&expected_path, &actual).expect("write expectation");
                let _ = fs::remove_file(&other);
                eprintln!("wrote {}", expected_path.display());
            }
            Ok(expected) => failures.push(format!(
                "{}: output differs from {}\n--- expected\n{expected}\n--- actual\n{actual}",
                input.display(),
                expected_path.display()
            )),
            Err(_) => failures.push(format!(
                "{}: expected {} but the parser produced {}:\n{actual}",
                input.display(),
                other.display(),
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden files differ (UPDATE_EXPECT=1 rewrites them):\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}
