//! The `gitclaw` binary: everything lives in `gitclaw-server`; this file only hands over.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    gitclaw_server::cli::main()
}
