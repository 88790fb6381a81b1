//! `gatehouse-origin`: the server and admin CLI.

fn main() -> std::process::ExitCode {
    gatehouse_origin::cli::main()
}
