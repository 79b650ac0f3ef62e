//! The `breakglass` binary: parse arguments, run, map errors to DESIGN.md's exit codes.
#![forbid(unsafe_code)]

fn main() {
    let cli = breakglass::cli::parse();
    let json = cli.json;
    match breakglass::cli::run(cli) {
        Ok(()) => {}
        Err(e) => std::process::exit(e.report(json)),
    }
}
