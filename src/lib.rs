//! breakglass: the emergency-response appliance for DeFi guardians.
//!
//! The core modules (`manifest`, `decode`, `policy`, `compose`, `safe`, `bundle`) take bytes and values
//! and return values; only `cli` and the signer/chain edges touch terminals, devices or networks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod builder;
pub mod bundle;
pub mod chain;
pub mod cli;
pub mod compose;
pub mod control;
pub mod decode;
pub mod drill;
pub mod fsutil;
pub mod incident;
pub mod ladder;
pub mod layout;
pub mod manifest;
pub mod policy;
pub mod safe;
pub mod signer;
pub mod simulate;
pub mod text;
pub mod timelock;
pub mod transfer;
pub mod tui;
pub mod upgrade;
pub mod watch;
