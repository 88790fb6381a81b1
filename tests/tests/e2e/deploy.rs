//! The deploy path: `wrangler deploy --env production --dry-run` (offline: no
//! account, no API token, no upload) runs wrangler.toml's `[build]` the way a
//! real deploy does and writes the bundle it would upload. That bundle must
//! be the optimized worker — binaryen's wasm-opt ran, which drops the
//! `name` custom section the unoptimized wasm-bindgen output carries — and
//! fit Cloudflare's 1 MiB (gzip) worker size limit, with the production
//! bindings declared.
//!
//! This rebuilds `edge/build` (worker-build swaps its output in atomically
//! when done), so edges other tests start meanwhile run the same code.

use crate::harness::{repo_root, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Cloudflare's worker size limit (free plan), compressed.
const MAX_GZIP_BYTES: usize = 1024 * 1024;

/// An unsigned LEB128 at the start of `bytes`: (value, length).
fn leb128(bytes: &[u8]) -> (usize, usize) {
    let mut value = 0usize;
    for (i, b) in bytes.iter().enumerate().take(5) {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    panic!("bad LEB128 in the wasm module");
}

/// The names of a wasm module's custom sections.
fn custom_sections(wasm: &[u8]) -> Vec<String> {
    assert!(
        wasm.len() >= 8 && &wasm[..4] == b"\0asm",
        "not a wasm module"
    );
    let mut names = Vec::new();
    let mut i = 8;
    while i < wasm.len() {
        let id = wasm[i];
        let (size, n) = leb128(&wasm[i + 1..]);
        let start = i + 1 + n;
        if id == 0 {
            let (len, m) = leb128(&wasm[start..]);
            names.push(String::from_utf8_lossy(&wasm[start + m..start + m + len]).into_owned());
        }
        i = start + size;
    }
    names
}

#[test]
fn custom_sections_are_listed() {
    // magic, version, a custom section "name" (empty payload), a type section.
    let wasm = b"\0asm\x01\0\0\0\0\x05\x04name\x01\x01\0";
    assert_eq!(custom_sections(wasm), vec!["name"]);
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read outdir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn gzip_len(path: &Path) -> usize {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .expect("gzip");
    assert!(out.status.success(), "gzip {}", path.display());
    out.stdout.len()
}

#[test]
fn wrangler_deploy_dry_run_bundles_the_optimized_worker_under_1_mib_gzip() {
    let root = repo_root();
    let work = TempDir::new("deploy");
    let outdir = work.path().join("bundle");
    let out = Command::new(root.join("node_modules/.bin/wrangler"))
        .current_dir(&root)
        .args(["deploy", "--env", "production", "--dry-run", "--outdir"])
        .arg(&outdir)
        // Offline and anonymous: a dry run needs neither an account nor the network.
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env_remove("CLOUDFLARE_ENV")
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_LOG_PATH", work.path().join("wrangler-logs"))
        .output()
        .expect("run wrangler deploy --dry-run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "wrangler deploy --dry-run failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stderr.contains("optimized build (wasm-opt) for wrangler deploy"),
        "wrangler deploy did not run the optimized build:\n{stderr}"
    );
    // The production bindings and placeholders are what would be uploaded.
    for binding in [
        "REVOCATIONS",
        "REPLAY_GUARD",
        "RATE_LIMITER",
        "REVOCATION_STORE",
        "REPLACE_ORIGIN_HOST",
    ] {
        assert!(
            stdout.contains(binding),
            "{binding} missing from the dry run's bindings:\n{stdout}"
        );
    }

    let files = files_under(&outdir);
    let wasm: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    assert_eq!(wasm.len(), 1, "one wasm module in {files:?}");
    let module = std::fs::read(wasm[0]).expect("read wasm");
    let sections = custom_sections(&module);
    assert!(
        !sections.iter().any(|s| s == "name"),
        "the bundle's wasm still has its `name` section: wasm-opt did not run (sections: {sections:?})"
    );

    let uploaded: Vec<&PathBuf> = files
        .iter()
        .filter(|p| !p.extension().is_some_and(|e| e == "map"))
        .collect();
    let gzip: usize = uploaded.iter().map(|p| gzip_len(p)).sum();
    eprintln!(
        "deploy bundle: {} bytes gzip ({:?})",
        gzip,
        uploaded
            .iter()
            .map(|p| p.file_name().unwrap_or_default())
            .collect::<Vec<_>>()
    );
    assert!(
        gzip < MAX_GZIP_BYTES,
        "the deploy bundle is {gzip} bytes gzip, over 1 MiB"
    );
}
