//! breakglass's integration tests: one binary (see ripgrep's tests/tests.rs), one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Shared helpers: a real anvil node with the real Safe and OpenZeppelin contracts (support::anvil), the
/// binary (support::bin), the Ledger simulator (support::sim), and the incident world on anvil with its
/// manifest builder (support::world).
mod support;

/// Issue 12's attacks, each performed on anvil with the real Safe and proven refused.
mod attacks;
/// Issue 12: audit entries of any size keep the hash chain whole.
mod audit_large;
/// Issue 14: Safe Transaction Builder files in real shapes, hashes equal the real Safe's.
mod builder_files;
/// Compose against the real Safe, MultiSendCallOnly, proxies and timelock on anvil; tampered bundles.
mod compose_chain;
/// Crash safety: SIGKILL at many points during bundle writes, signing and audit appends.
mod crash;
/// Device faults through the simulator: each a clear error, nothing written.
mod device_faults;
/// Issue 12: escape sequences and bidi text from files never reach a terminal raw (CLI in tmux, console).
mod escapes;
/// Execute and broadcast on a real node: the whole incident, upgrades, timelock, idempotent broadcast.
mod execute_chain;
/// Issue 16: full EIP-712 signing of Safe transactions (the device shows the fields), against the real app's vector.
mod full_eip712;
/// Issue 12's smaller findings: untrusted verify exit code, timelock delay, Builder operation, signer first.
mod hardening;
/// Issue 21: HTTPS to the node (rustls with ring) against a real TLS server in front of anvil; an
/// untrusted certificate is refused.
mod https_rpc;
/// Issue 21: the installed binary's drill anywhere with only anvil on PATH; embedded contracts = pinned packages.
mod install;
/// The anvil harness itself: Safe 1.4.1, OZ 5 proxies and timelock deploy and behave.
mod it_harness;
/// Issue 19: pre-signed pause ladders on anvil: build, sign with two owners, status, fire, stale, invalid.
mod ladder;
/// Issue 18: storage-layout checks of upgrades; breakglass's verdict equals OpenZeppelin upgrades-core's on
/// every fixture pair compiled with solc-js.
mod layout;
/// Issue 18 on anvil: the demo patch passes; a middle insert, a live-storage collision and a stale current
/// implementation are refused before signing.
mod layout_chain;
/// Manifest loading: valid fixtures load, every `fail_*` fixture gives its error at its position.
mod manifest_fixtures;
/// Manifest trust: pin store and owner approvals with real signatures, via the real binary.
mod manifest_trust;
/// Issue 14: Multicall3 batches opened call by call, allowed only as the manifest's batcher; executed on anvil.
mod multicall;
/// Issue 15: one incident on three chains (three anvils): compose, sign in one sitting, execute
/// concurrently, re-run finishes what a downed node left; cross-chain signatures refused; phased rollout.
mod multichain;
/// Issue 21: QR images as a camera delivers them (scaled, rotated, JPEG, screen glare) import; hostile images refused.
mod qr_camera;
/// Issue 16: the real Ledger Ethereum app 1.22.0 under Speculos; its pages equal breakglass's preview.
mod real_ledger;
/// Issue 14: Safe 1.1.1 / 1.2.0 hashes (domain without chain id) against Foundry's EIP-712.
mod safe_legacy;
/// The incident core in-process: a Session drives the whole incident; the console's path refuses unpinned code.
mod session;
/// Signers: Ledger APDUs against Ledger's own JS client, the simulator against PROTOCOLS.md's vectors,
/// keystores from cast, and signatures the real Safe accepts.
mod signer;
/// Issue 17: shadow simulation in revm, checked against anvil's own execution; refusals before signing.
mod simulate;
/// Issue 17: offline snapshots of the real Safe and OZ proxies: proofs verify, values equal the node's, tampering refused.
mod snapshot;
/// Moving bundles between machines: combine, UR/QR export and import, ERC-4527 with Keystone's library.
mod transfer;
/// The console: every screen rendered with TestBackend (80×24 and larger), the state machine by keys.
mod tui;
/// The drill end to end in tmux, driven by keys as a person would.
mod tui_tmux;
/// Issue 14: OZ 4 upgrade shapes (UUPS upgradeTo, ProxyAdmin.upgrade) composed, verified and executed on anvil.
mod upgrade_shapes;
/// Verify: every fixture transaction decoded and judged; hashes equal the real Safe's.
mod verify_calls;
/// Issue 20: `breakglass watch` on anvil with 1-second blocks: injected changes alert within 2 blocks, a
/// quiet 100-block control run, --auto-fire pauses by B+2, node restart and cursor restart miss no block,
/// anvil_reorg re-checks.
mod watch;
/// Issue 20: `breakglass watch` as a person runs it: WebSocket wake-ups, --on-alert, Ctrl-C and the cursor.
mod watch_cli;
