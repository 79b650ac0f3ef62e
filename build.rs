//! Names the commit in `breakglass --version` (BREAKGLASS_COMMIT): `git rev-parse --short=12 HEAD` when
//! built from a git checkout, else "unknown".
//!
//! On Linux with glibc it also links GCC's unwinder statically (`libgcc_eh.a`, which ships with the gcc
//! that links every Rust program here) instead of loading `libgcc_s.so.1` at run time: one shared library
//! fewer to map and bind at every start, and no `__cpu_indicator_init` constructor (a dozen `cpuid`s, each
//! a trap to the hypervisor on a VM). Panics, `catch_unwind` and backtraces work the same; a
//! `crt-static` build already links it so. A toolchain whose cc has no `libgcc_eh.a` keeps `libgcc_s`.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=BREAKGLASS_COMMIT={commit}");
    for p in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");

    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && !var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static")
        && gcc_eh_present()
    {
        // Whole archive: the unwinder's symbols are all defined before std (linked after this crate) asks
        // for them, so `--as-needed` drops libgcc_s.
        println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
    }
}

/// Whether the C compiler that links (cc, as rustc calls it on linux-gnu) has `libgcc_eh.a`. A toolchain
/// without it (LLVM's compiler-rt and libunwind) keeps the shared unwinder: slower to start, same program.
fn gcc_eh_present() -> bool {
    let found = Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .is_some_and(|p| {
            std::path::Path::new(&p).is_absolute() && std::path::Path::new(&p).exists()
        });
    if !found {
        println!("cargo:warning=libgcc_eh.a not found by cc: linking the shared libgcc_s unwinder instead");
    }
    found
}
