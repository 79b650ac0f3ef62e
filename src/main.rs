//! The `breakglass` binary: parse arguments, run, map errors to DESIGN.md's exit codes.
#![forbid(unsafe_code)]

use clap::Parser;

/// mimalloc instead of glibc's malloc: loading a manifest is thousands of small allocations (TOML nodes,
/// ABI items), and glibc spent a fifth of a whole `verify` process in malloc and free.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = breakglass::cli::Cli::parse();
    let json = cli.json;
    match breakglass::cli::run(cli) {
        Ok(()) => {}
        Err(e) => std::process::exit(e.report(json)),
    }
}
