//! Subcommands whose arguments clap builds only when that subcommand runs.
//!
//! clap's derive builds every subcommand's arguments before it parses anything: for this CLI, 22 commands
//! and their nested ones, about a third of what `breakglass verify` executes and its largest heap peak.
//! [`Lazy`] and [`LazySub`] wrap a derived `Args` or `Subcommand` type and hand clap the same builder
//! through [`clap::Command::defer`], which clap runs when it builds that command: when it is the one on the
//! command line, or for its `--help`. The command line accepted, the help and the errors are the same as
//! with clap's eager build; completions and man pages, which walk the whole tree, build it eagerly
//! ([`eager`]). A test compares every help text, error, completion script and man page of both builds.
//!
//! [`Root`] goes one step further for the top level: when the command line names its command after
//! nothing but global options ([`command_on_line`]), clap is given that command alone, so it does not
//! copy the global options into the 21 others (see [`Root`]); the same test compares its answers too.

use clap::{ArgMatches, Args, Command, FromArgMatches, Subcommand};
use std::cell::{Cell, RefCell};
use std::ffi::OsString;

thread_local! {
    /// When set, [`Lazy`] and [`LazySub`] build at once, exactly as clap's derive does. Per thread: the
    /// command tree is built on the thread that asks for it.
    static EAGER: Cell<bool> = const { Cell::new(false) };
    /// The top-level command named on the command line, when [`command_on_line`] is sure of it: [`Root`]
    /// then gives clap that command alone.
    static ONLY: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The global options that take a value (`--manifest PATH` or `--manifest=PATH`). A test keeps this list
/// equal to the command line's definition.
const VALUE_GLOBALS: [&str; 5] = ["manifest", "pin", "audit-log", "rpc-url", "rpc-config"];

/// The top-level command a command line runs, when it is certain from the words before it: only global
/// options (`--json`, and those of [`VALUE_GLOBALS`] with their values) may come first. Anything else
/// (`--help`, `-V`, an unknown option, `help`, a word that is not valid UTF-8) gives `None`, and clap
/// answers with the whole tree. `args` starts with the program name.
pub fn command_on_line(args: &[OsString]) -> Option<String> {
    let mut i = 1;
    while let Some(a) = args.get(i) {
        let a = a.to_str()?;
        if a == "--json" {
            i += 1;
        } else if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, _)) if VALUE_GLOBALS.contains(&name) => i += 1,
                None if VALUE_GLOBALS.contains(&long) => i += 2,
                _ => return None,
            }
        } else if a.starts_with('-') || a == "help" {
            return None;
        } else {
            return Some(a.to_string());
        }
    }
    None
}

/// From now on (on this thread), [`Root`] builds only `name` (when it is a top-level command), or the
/// whole tree (`None`).
pub fn only(name: Option<String>) {
    ONLY.with(|o| *o.borrow_mut() = name);
}

/// Builds the command tree eagerly from now on (on this thread): for completions and man pages, which
/// generate from the whole tree (clap lists a deferred command's own commands only once it is built).
pub fn eager() {
    EAGER.with(|e| e.set(true));
}

fn is_eager() -> bool {
    EAGER.with(|e| e.get())
}

/// Runs `build` on the command as the derive would have before the variant's own attributes: the
/// derived type's doc comment sets `about` (e.g. "`breakglass verify …`"), which the variant's doc comment
/// then replaces. Deferred, `build` runs after the variant's attributes, so they are put back.
fn keep_variant_about(cmd: Command, build: fn(Command) -> Command) -> Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let cmd = build(cmd);
    let cmd = match about {
        Some(a) => cmd.about(a),
        None => cmd.about(None::<&'static str>),
    };
    match long_about {
        Some(a) => cmd.long_about(a),
        None => cmd.long_about(None::<&'static str>),
    }
}

/// A derived `Args` type whose arguments are built when its command is.
#[derive(Debug, Clone, Default)]
pub struct Lazy<T>(pub T);

impl<T: Args> Args for Lazy<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
    fn augment_args(cmd: Command) -> Command {
        if is_eager() {
            return T::augment_args(cmd);
        }
        cmd.defer(|c| keep_variant_about(c, T::augment_args))
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        if is_eager() {
            return T::augment_args_for_update(cmd);
        }
        cmd.defer(|c| keep_variant_about(c, T::augment_args_for_update))
    }
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Lazy)
    }
    fn from_arg_matches_mut(m: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(m).map(Lazy)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
    fn update_from_arg_matches_mut(&mut self, m: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(m)
    }
}

/// A derived `Subcommand` type (a command with commands of its own) whose commands are built when it is.
#[derive(Debug, Clone)]
pub struct LazySub<T>(pub T);

impl<T: Subcommand> Subcommand for LazySub<T> {
    fn augment_subcommands(cmd: Command) -> Command {
        if is_eager() {
            return T::augment_subcommands(cmd);
        }
        cmd.defer(|c| keep_variant_about(c, T::augment_subcommands))
    }
    fn augment_subcommands_for_update(cmd: Command) -> Command {
        if is_eager() {
            return T::augment_subcommands_for_update(cmd);
        }
        cmd.defer(|c| keep_variant_about(c, T::augment_subcommands_for_update))
    }
    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

impl<T: FromArgMatches> FromArgMatches for LazySub<T> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(LazySub)
    }
    fn from_arg_matches_mut(m: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(m).map(LazySub)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
    fn update_from_arg_matches_mut(&mut self, m: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(m)
    }
}

/// The top-level commands: all of them, or only the one on the command line ([`only`]).
///
/// clap copies every global option into every command before it parses (six options into 22 commands:
/// 130 copies and over 100 KB of heap, a tenth of a short command's whole run), though only one
/// command runs. With the command known from the line, clap is given that command alone, and it
/// answers as with the whole tree: help texts, errors and parsed values (a test compares them on every
/// command path). Help and errors about the commands themselves (`--help`, a typo) get the whole tree,
/// since [`command_on_line`] is `None` for them. One difference is known: for a mistyped option, clap's
/// "tip: 'sign --out' exists" can name a command that appears later on the line only as a value (e.g.
/// `--manifest --outt --pin sign verify`); given one command, that tip is not offered. Parse and exit
/// code are the same.
#[derive(Debug, Clone)]
pub struct Root<T>(pub T);

fn only_one(cmd: Command, augment: fn(Command) -> Command) -> Command {
    let name = ONLY.with(|o| o.borrow().clone());
    match name {
        Some(name) if !is_eager() => {
            let all = augment(Command::new("all"));
            match all.find_subcommand(&name) {
                Some(one) => cmd.subcommand(one.clone()),
                None => augment(cmd),
            }
        }
        _ => augment(cmd),
    }
}

impl<T: Subcommand> Subcommand for Root<T> {
    fn augment_subcommands(cmd: Command) -> Command {
        only_one(cmd, T::augment_subcommands)
    }
    fn augment_subcommands_for_update(cmd: Command) -> Command {
        only_one(cmd, T::augment_subcommands_for_update)
    }
    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

impl<T: FromArgMatches> FromArgMatches for Root<T> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Root)
    }
    fn from_arg_matches_mut(m: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(m).map(Root)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
    fn update_from_arg_matches_mut(&mut self, m: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    /// Every command path of the tree (`["ladder", "build"]` …), from the eager build.
    fn paths(cmd: &Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sc in cmd.get_subcommands() {
            let mut p = prefix.to_vec();
            p.push(sc.get_name().to_string());
            out.push(p.clone());
            paths(sc, &p, out);
        }
    }

    /// What clap answers to a command line: the parsed command (Debug) or the error as printed.
    fn answer(mut cmd: Command, args: &[&str]) -> String {
        let argv = std::iter::once("breakglass").chain(args.iter().copied());
        match cmd.try_get_matches_from_mut(argv) {
            Ok(mut m) => match Cli::from_arg_matches_mut(&mut m) {
                Ok(cli) => format!("ok {cli:?}"),
                Err(e) => format!("from_matches {:?}: {}", e.kind(), e.render()),
            },
            Err(e) => format!("{:?} exit {}: {}", e.kind(), e.exit_code(), e.render()),
        }
    }

    fn eager_command() -> Command {
        let was = is_eager();
        eager();
        let cmd = Cli::command();
        EAGER.with(|e| e.set(was));
        cmd
    }

    /// The deferred tree answers every help request and every command line below exactly as clap's eager
    /// build of the same derive does: same help texts (the commands' descriptions included), same errors
    /// and suggestions, same parsed values.
    #[test]
    fn lazy_tree_answers_as_the_eager_one() {
        assert!(!is_eager());
        let eager_cmd = eager_command();
        let mut all = vec![vec![]];
        paths(&eager_cmd, &[], &mut all);
        assert!(all.len() > 30, "{} command paths", all.len());
        let mut lines: Vec<Vec<String>> = Vec::new();
        for p in &all {
            for flag in ["--help", "-h"] {
                let mut l = p.clone();
                l.push(flag.to_string());
                lines.push(l);
            }
            let mut h = vec!["help".to_string()];
            h.extend(p.iter().cloned());
            lines.push(h);
            lines.push(p.clone());
            let mut bad = p.clone();
            bad.push("--no-such-flag".to_string());
            lines.push(bad);
        }
        for l in [
            &["verfy"][..],
            &["--json", "verify", "--to", "0x1"],
            &[
                "verify",
                "--safe",
                "0x5AFe00000000000000000000000000000000a11C",
                "--to",
                "0x1",
                "--data",
                "0x",
                "--json",
            ],
            &[
                "--manifest",
                "m.toml",
                "compose",
                "halt",
                "--nonce",
                "3",
                "-o",
                "b.json",
            ],
            &["ladder", "fire"],
            &["ladder", "fir"],
            &[
                "sign",
                "b.json",
                "--speculos",
                "127.0.0.1:9999",
                "--approve-as-owner",
            ],
            &["watch", "--from-block", "x"],
            &["completions", "bash"],
            &["--version"],
            &["verify", "--version"],
            &["--manifest=m.toml", "--pin", "0x12", "verify", "b.json"],
            &[
                "--json",
                "--audit-log",
                "a.jsonl",
                "--rpc-url",
                "http://x",
                "verify",
                "b.json",
            ],
            &["--rpc-config=r.toml", "inspect", "b.json", "--json"],
            &["--manifest", "verify", "verify", "b.json"],
            &["--manifest"],
            &["--manifest", "m.toml"],
            &["--json", "help", "verify"],
            &["--json", "-h"],
            &["--jsn", "verify"],
            &["verify", "--manifest", "x.toml", "--pin"],
            &["manifest", "chek"],
            &["--", "verify"],
        ] {
            lines.push(l.iter().map(|s| s.to_string()).collect());
        }
        for l in &lines {
            let args: Vec<&str> = l.iter().map(String::as_str).collect();
            let lazy = answer(Cli::command(), &args);
            let eager = answer(eager_command(), &args);
            assert_eq!(lazy, eager, "breakglass {}", l.join(" "));
            // Given only the command on the line, clap answers the same.
            let argv: Vec<OsString> = std::iter::once("breakglass")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect();
            only(command_on_line(&argv));
            let pruned = answer(Cli::command(), &args);
            only(None);
            assert_eq!(pruned, eager, "breakglass {} (one command)", l.join(" "));
        }
        // The command on the line is found after global options only, and only then.
        let on = |a: &[&str]| {
            let argv: Vec<OsString> = std::iter::once("breakglass")
                .chain(a.iter().copied())
                .map(OsString::from)
                .collect();
            command_on_line(&argv)
        };
        assert_eq!(on(&["verify", "b.json"]).as_deref(), Some("verify"));
        assert_eq!(
            on(&["--manifest", "verify", "--json", "--pin=0x1", "sign"]).as_deref(),
            Some("sign")
        );
        for none in [
            &[][..],
            &["--help", "verify"],
            &["-V"],
            &["help", "verify"],
            &["--jsn", "verify"],
            &["--manifest"],
            &["--", "verify"],
        ] {
            assert_eq!(on(none), None, "{none:?}");
        }
        // Pruned, clap holds that command alone (no global option copied into 21 others).
        only(Some("verify".into()));
        let one = Cli::command();
        only(None);
        assert_eq!(
            one.get_subcommands()
                .map(|c| c.get_name())
                .collect::<Vec<_>>(),
            ["verify"]
        );
        // VALUE_GLOBALS is the definition's global options that take a value; --json the one flag.
        let globals: Vec<(String, bool)> = eager_cmd
            .get_arguments()
            .filter(|a| a.is_global_set())
            .map(|a| {
                (
                    a.get_long().unwrap().to_string(),
                    a.get_action().takes_values(),
                )
            })
            .collect();
        let mut valued: Vec<&str> = globals
            .iter()
            .filter(|g| g.1)
            .map(|g| g.0.as_str())
            .collect();
        valued.sort_unstable();
        let mut expected = VALUE_GLOBALS.to_vec();
        expected.sort_unstable();
        assert_eq!(valued, expected);
        assert_eq!(
            globals
                .iter()
                .filter(|g| !g.1)
                .map(|g| g.0.as_str())
                .collect::<Vec<_>>(),
            ["json"]
        );

        // The lazy tree did not build what it did not need: a parse of `verify` leaves `sign` unbuilt.
        let mut cmd = Cli::command();
        cmd.try_get_matches_from_mut(["breakglass", "verify", "b.json"])
            .unwrap();
        let sign = cmd.find_subcommand("sign").unwrap();
        assert!(
            sign.get_arguments().all(|a| a.is_global_set()),
            "sign was built: {:?}",
            sign.get_arguments()
                .map(|a| a.get_id().to_string())
                .collect::<Vec<_>>()
        );
    }
}
