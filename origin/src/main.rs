//! `gatehouse-origin`: the server and admin CLI.

/// mimalloc instead of glibc's malloc: the token endpoint allocates a few
/// dozen small buffers per request on several threads, and glibc's arenas
/// (`_int_malloc`, `_int_free`, `malloc_consolidate`) were ~9 % of the
/// origin's CPU under load in `perf` (issue 21.3).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gatehouse_origin::cli::main()
}
