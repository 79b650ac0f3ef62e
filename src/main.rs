//! The `breakglass` binary: parse arguments, run, map errors to DESIGN.md's exit codes.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let cli = breakglass::cli::Cli::parse();
    let json = cli.json;
    match breakglass::cli::run(cli) {
        Ok(()) => {}
        Err(e) => std::process::exit(e.report(json)),
    }
}
