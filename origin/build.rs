//! Rebuilds the origin when a migration is added or changed:
//! `sqlx::migrate!` embeds `migrations/` at compile time but cannot tell
//! cargo to watch the folder on stable Rust (sqlx's documented remedy).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
