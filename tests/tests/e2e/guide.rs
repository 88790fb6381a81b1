//! docs/guide.md and docs/operations.md cannot rot: every ```sh block in
//! each runs, in order, in one bash session against a live origin (with an
//! edge and upstream for the guide). The documents' default addresses and
//! paths (`scripts/dev`'s) are swapped for this test's own.

use crate::harness::{repo_root, Origin, Stack, TempDir, ADMIN_TOKEN};
use std::process::Command;

/// The ```sh blocks of a Markdown document, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "unterminated code block in the guide");
    blocks
}

#[test]
fn sh_blocks_are_extracted_in_order() {
    let md = "text\n```sh\necho a\n```\n```text\nnot run\n```\n```sh\necho b\necho c\n```\n";
    assert_eq!(sh_blocks(md), vec!["echo a\n", "echo b\necho c\n"]);
}

#[test]
fn every_command_in_the_guide_runs() {
    let stack = Stack::start_linked(&[], &[]);
    let guide = std::fs::read_to_string(repo_root().join("docs/guide.md")).expect("docs/guide.md");
    let blocks = sh_blocks(&guide);
    assert!(blocks.len() >= 8, "the guide lost its examples");

    let bin_dir = crate::harness::origin_binary()
        .parent()
        .expect("bin dir")
        .display()
        .to_string();
    let data_dir = stack.origin.data.path().display().to_string();
    let substitutions = [
        ("http://127.0.0.1:8080", stack.origin.url.clone()),
        ("http://127.0.0.1:8787", stack.edge.url.clone()),
        (
            "sqlite://$PWD/data/gatehouse.db",
            stack.origin.database_url.clone(),
        ),
        ("$PWD/data", data_dir),
        ("$PWD/target/debug", bin_dir),
    ];
    run_blocks("guide", &blocks, &substitutions);
}

/// Runs `blocks` in order in one `bash -euo pipefail` session, after
/// `substitutions`, in a fresh directory; fails naming the block that failed.
fn run_blocks(name: &str, blocks: &[String], substitutions: &[(&str, String)]) {
    let mut script = String::from("set -euo pipefail\n");
    for (i, block) in blocks.iter().enumerate() {
        let mut block = block.clone();
        for (from, to) in substitutions {
            block = block.replace(from, to);
        }
        script.push_str(&format!("echo '>>> {name} block {}' >&2\n{block}\n", i + 1));
    }
    let work = TempDir::new(name);
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(work.path())
        .env("GATEHOUSE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("GATEHOUSE_CONFIG")
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if std::env::var_os("GATEHOUSE_GUIDE_VERBOSE").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }
    let marker = format!(">>> {name} block");
    let failed_block = stderr
        .lines()
        .rfind(|l| l.starts_with(&marker))
        .unwrap_or("none");
    assert!(
        out.status.success(),
        "{name} failed in {failed_block}:\n--- stdout\n{}\n--- stderr\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// docs/operations.md's commands (metrics, audit filters, following a
/// request id to the origin's log line and audit rows, a token's `jti` to
/// the request that issued it) against a live origin laid out like
/// `scripts/dev`'s: its log at `data/origin.log`, its demo client's
/// credentials in `data/demo-client.json`.
#[test]
fn every_command_in_operations_runs() {
    let origin = Origin::start();
    let doc = std::fs::read_to_string(repo_root().join("docs/operations.md"))
        .expect("docs/operations.md");
    let blocks = sh_blocks(&doc);
    assert!(blocks.len() >= 5, "operations.md lost its examples");
    let joined = blocks.concat();
    for needed in [
        "/metrics",
        "audit --request-id",
        "audit --jti",
        "origin.log",
    ] {
        assert!(
            joined.contains(needed),
            "operations.md no longer runs {needed}"
        );
    }
    let created = origin.cli(&[
        "client",
        "create",
        "--name",
        "demo",
        "--scope",
        "read write",
        "--audience",
        "https://api.example",
    ]);
    std::fs::write(origin.data.path().join("demo-client.json"), created).expect("demo client");
    let bin_dir = crate::harness::origin_binary()
        .parent()
        .expect("bin dir")
        .display()
        .to_string();
    let substitutions = [
        ("http://127.0.0.1:8080", origin.url.clone()),
        (
            "sqlite://$PWD/data/gatehouse.db",
            origin.database_url.clone(),
        ),
        ("$PWD/data", origin.data.path().display().to_string()),
        ("$PWD/target/debug", bin_dir),
    ];
    run_blocks("operations", &blocks, &substitutions);
}
