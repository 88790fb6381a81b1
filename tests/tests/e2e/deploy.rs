//! The deploy path: `wrangler deploy --env production --dry-run` (offline: no
//! account, no API token, no upload) runs wrangler.toml's `[build]` the way a
//! real deploy does and writes the bundle it would upload. That bundle must
//! be the optimized worker — binaryen's wasm-opt ran over it, so its module
//! is clearly smaller than the dev build of the same code (`scripts/build-edge`
//! without wasm-opt; worker-build keeps the `name` section either way, for
//! readable stack traces) — stay within the project's 1 MiB (gzip) budget
//! (below Cloudflare's worker size limits), and declare the production
//! bindings.
//!
//! This rebuilds `edge/build` twice, ending with the dev build other tests
//! expect. A `wrangler dev` another test runs meanwhile reloads the worker
//! into a fresh isolate (its cached keys lost), so `scripts/test` runs this
//! test on its own, after the other end-to-end tests (`--skip deploy::`
//! there).

use crate::harness::{repo_root, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The worker size budget, compressed (README: "target ≤ 1 MiB").
const MAX_GZIP_BYTES: usize = 1024 * 1024;

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
        stdout.contains("optimized build (wasm-opt) for wrangler deploy")
            || stderr.contains("optimized build (wasm-opt) for wrangler deploy"),
        "wrangler deploy did not run the optimized build:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
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
    let deployed = std::fs::metadata(wasm[0]).expect("wasm").len();

    // The dev build of the same code, without wasm-opt (and back in edge/build).
    let dev = Command::new(root.join("scripts/build-edge"))
        .current_dir(&root)
        .env_remove("WRANGLER_COMMAND")
        .output()
        .expect("scripts/build-edge");
    assert!(
        dev.status.success(),
        "scripts/build-edge failed:\n{}",
        String::from_utf8_lossy(&dev.stderr)
    );
    let dev_size = std::fs::metadata(root.join("edge/build/index_bg.wasm"))
        .expect("dev wasm")
        .len();
    eprintln!("wasm module: {deployed} bytes deployed, {dev_size} bytes dev build");
    assert!(
        deployed * 100 < dev_size * 95,
        "the deployed wasm ({deployed} bytes) is not smaller than the dev build ({dev_size} bytes): wasm-opt did not run"
    );

    // The modules wrangler uploads (not its README or source maps).
    let uploaded: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "js" || e == "mjs" || e == "wasm")
        })
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
