//! Verification of a transaction from anywhere: a bundle, a Safe transaction's fields, a plain
//! transaction, or a Safe{Wallet} Transaction Builder file. One method, [`Session::verify_input`], builds
//! the report and records it in the audit log; the front ends only gather the input and show the result.

use super::{IncidentError, Session};
use crate::bundle::Bundle;
use crate::policy::{self, Report};
use crate::safe::{Operation, SafeTxFields};
use alloy::primitives::{Address, Bytes, U256};
use serde_json::json;

/// What to verify.
#[derive(Debug, Clone)]
pub enum VerifyInput {
    /// A bundle (composed here or received).
    Bundle(Box<Bundle>),
    /// A Safe transaction's fields.
    Safe {
        /// Chain id (default: the manifest's).
        chain_id: Option<u64>,
        /// The Safe.
        safe: Address,
        /// The SafeTx.
        tx: Box<SafeTxFields>,
    },
    /// A plain transaction from an account.
    Plain {
        /// Chain id (default: the manifest's).
        chain_id: Option<u64>,
        /// Sender (shown only).
        from: Option<Address>,
        /// Target.
        to: Address,
        /// Wei sent.
        value: U256,
        /// Calldata.
        data: Bytes,
    },
    /// A Safe{Wallet} Transaction Builder file, read as the Builder reads it.
    Builder {
        /// Where it came from (for messages).
        name: String,
        /// Its bytes.
        bytes: Vec<u8>,
        /// Chain id (default: the file's, then the manifest's).
        chain_id: Option<u64>,
        /// The Safe (default: the file's).
        safe: Option<Address>,
        /// Safe nonce.
        nonce: U256,
    },
}

/// A Transaction Builder file's problem: one code and one kind (refused) for every problem of the file.
fn builder_error(name: &str, e: impl std::fmt::Display) -> IncidentError {
    IncidentError::refused("bad_builder_json", format!("{name}: {e}"))
        .recommend("do not sign this file; ask for it again from its source")
}

impl Session {
    /// Verifies a transaction against the manifest and records the verdict in the audit log. The report is
    /// returned whether allowed or not; an error means it could not be read or decoded at all.
    pub fn verify_input(&self, input: VerifyInput) -> Result<Report, IncidentError> {
        let m = &self.manifest;
        let report = match input {
            VerifyInput::Bundle(b) => self.verify(&b)?.into_report(),
            VerifyInput::Safe { chain_id, safe, tx } => {
                policy::verify_safe_tx(m, chain_id.unwrap_or(m.chain_id), safe, &tx)?
            }
            VerifyInput::Plain {
                chain_id,
                from,
                to,
                value,
                data,
            } => policy::verify_plain(m, chain_id.unwrap_or(m.chain_id), from, to, value, &data)?,
            VerifyInput::Builder {
                name,
                bytes,
                chain_id,
                safe,
                nonce,
            } => self.verify_builder(&name, &bytes, chain_id, safe, nonce)?,
        };
        self.record(
            "verify",
            json!({
                "allowed": report.allowed,
                "actions": report.actions,
                "safe_tx_hash": report.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash)),
                "critical": report.criticals().map(|f| f.code).collect::<Vec<_>>(),
                "manifest": report.manifest_hash,
            }),
            None,
        )?;
        Ok(report)
    }

    fn verify_builder(
        &self,
        name: &str,
        bytes: &[u8],
        chain_id: Option<u64>,
        safe: Option<Address>,
        nonce: U256,
    ) -> Result<Report, IncidentError> {
        let m = &self.manifest;
        let batch = crate::builder::parse(bytes).map_err(|e| builder_error(name, e))?;
        let chain_id = chain_id.or(batch.chain_id).unwrap_or(m.chain_id);
        let safe = safe.or(batch.safe).ok_or_else(|| {
            IncidentError::refused(
                "bad_builder_json",
                format!(
                    "{name} names no Safe (meta.createdFromSafeAddress is empty): name the Safe it is for; the file itself need not change"
                ),
            )
            .recommend("name the Safe the batch is for")
        })?;
        let mut entries = batch.entries;
        // As Safe{Wallet} does: one transaction is a plain CALL; several are a MultiSendCallOnly batch.
        let tx = if entries.len() == 1 {
            let e = entries.remove(0);
            SafeTxFields::new(e.to, e.value, e.data, e.operation, nonce)
        } else {
            let ms = m
                .safe
                .as_ref()
                .map(|s| s.multisend_call_only)
                .ok_or_else(|| {
                    IncidentError::bad_input(
                        "usage",
                        "a batch needs the manifest's [safe] (for its MultiSendCallOnly)",
                    )
                })?;
            SafeTxFields::new(
                ms,
                U256::ZERO,
                crate::safe::multisend_calldata(&entries),
                Operation::DelegateCall,
                nonce,
            )
        };
        Ok(policy::verify_safe_tx(m, chain_id, safe, &tx)?)
    }
}
