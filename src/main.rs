//! The `gitclaw` binary: everything lives in `gitclaw-server`; this file only hands over.

fn main() -> std::process::ExitCode {
    gitclaw_server::cli::main()
}
