//! Combining bundles: signatures collected by several guardians for the same request become one
//! bundle, with duplicates dropped and the signatures sorted by owner address ascending (Safe's
//! `checkNSignatures` requires strictly increasing owners).
//!
//! "The same request" is decided on the whole request part of the bundle — manifest, chain, playbook,
//! actions, the Safe tx or EOA tx with its hashes, the timelock operation — and the first field that
//! differs is named. Only `created_at` and the signatures may differ.

use super::TransferError;
use crate::bundle::{Bundle, SignatureEntry};
use crate::safe::SignatureKind;
use alloy::primitives::Signature;
use serde_json::{json, Value};

/// The part of a bundle that must be identical for two bundles to be the same request, in the order
/// fields are compared: what a person chose first, the derived hashes last (so a changed nonce is named
/// as the nonce, not as the safeTxHash that follows from it).
fn request_view(b: &Bundle) -> Vec<(&'static str, Value)> {
    let mut safe_tx = serde_json::to_value(&b.safe_tx).unwrap_or_default();
    let mut eoa_tx = serde_json::to_value(&b.eoa_tx).unwrap_or_default();
    let mut timelock = serde_json::to_value(&b.timelock).unwrap_or_default();
    let take = |v: &mut Value, k: &str| {
        v.as_object_mut()
            .and_then(|o| o.remove(k))
            .unwrap_or(Value::Null)
    };
    let hashes = vec![
        ("safe_tx.hashes", take(&mut safe_tx, "hashes")),
        ("eoa_tx.signing_hash", take(&mut eoa_tx, "signing_hash")),
        ("timelock.operation_id", take(&mut timelock, "operation_id")),
    ];
    let mut v = vec![
        ("format", json!(b.format)),
        ("manifest", json!(b.manifest)),
        ("chain_id", json!(b.chain_id)),
        ("playbook", json!(b.playbook)),
        ("actions", json!(b.actions)),
        ("safe_tx", safe_tx),
        ("eoa_tx", eoa_tx),
        ("timelock", timelock),
    ];
    v.extend(hashes);
    v
}

fn short(v: Option<&Value>) -> String {
    let s = match v {
        None => "absent".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) => "none".to_string(),
        Some(other) => other.to_string(),
    };
    if s.chars().count() > 72 {
        format!("{}…", s.chars().take(72).collect::<String>())
    } else {
        s
    }
}

/// The first path where `a` and `b` differ (objects by sorted key, arrays by index), with both values.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<(String, String, String)> {
    if a == b {
        return None;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => {
                        if let Some(d) = first_difference(l, r, &join(k)) {
                            return Some(d);
                        }
                    }
                    (l, r) => return Some((join(k), short(l), short(r))),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, &format!("{path}[{i}]"))),
        _ => Some((path.to_string(), short(Some(a)), short(Some(b)))),
    }
}

/// Checks that `b` is the same request as `a`, naming the first field that differs.
pub fn same_request(
    a: &Bundle,
    a_name: &str,
    b: &Bundle,
    b_name: &str,
) -> Result<(), TransferError> {
    let diff = request_view(a)
        .into_iter()
        .zip(request_view(b))
        .find_map(|((k, l), (_, r))| first_difference(&l, &r, k));
    match diff {
        None => Ok(()),
        Some((field, left, right)) => Err(TransferError::NotSameRequest {
            field,
            left,
            right,
            left_file: a_name.into(),
            right_file: b_name.into(),
        }),
    }
}

/// Refuses a bundle past the signing step: executed (receipt), or a Safe tx already sent.
pub fn check_still_signing(b: &Bundle, name: &str) -> Result<(), TransferError> {
    if b.receipt.is_some() || (b.safe_tx.is_some() && b.signed_tx.is_some()) {
        return Err(TransferError::WrongStep(format!(
            "{name} was already executed: its signatures are spent, there is nothing to collect"
        )));
    }
    Ok(())
}

/// The result of adding signatures to a bundle.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The bundle, signatures sorted by signer, recomputed.
    pub bundle: Bundle,
    /// Signatures that were new.
    pub added: usize,
    /// Signatures dropped because their signer had already signed.
    pub duplicates: usize,
}

/// Adds signatures to a bundle: one per signer (the first kept), sorted by signer address ascending,
/// every signature recovered again; for an EOA tx the signed transaction is rebuilt from the signature.
pub fn add_signatures(
    base: &Bundle,
    sigs: impl IntoIterator<Item = SignatureEntry>,
) -> Result<Merged, TransferError> {
    let mut out = base.clone();
    let (mut added, mut duplicates) = (0, 0);
    for s in sigs {
        if let Some(i) = out.signatures.iter().position(|x| x.signer == s.signer) {
            // A recovered signature beats an approved-hash entry, which only names its owner: a forged
            // `v = 1` entry must never crowd out that owner's real signature.
            if out.signatures[i].kind == SignatureKind::ApprovedHash
                && s.kind != SignatureKind::ApprovedHash
            {
                out.signatures[i] = s;
            }
            duplicates += 1;
        } else {
            out.signatures.push(s);
            added += 1;
        }
    }
    out.signatures.sort_by_key(|s| s.signer);
    if let (Some(e), Some(first)) = (&out.eoa_tx, out.signatures.first()) {
        let sig =
            Signature::from_raw(&first.signature).map_err(|err| TransferError::BadSignature {
                reason: format!("of {} is malformed: {err}", first.signer.to_checksum(None)),
            })?;
        out.signed_tx = Some(signed_tx_record(&e.unsigned(out.chain_id), sig));
    }
    out.recompute()?;
    Ok(Merged {
        bundle: out,
        added,
        duplicates,
    })
}

/// The signed EIP-1559 transaction record, as `sign` writes it.
pub fn signed_tx_record(
    tx: &alloy::consensus::TxEip1559,
    sig: Signature,
) -> crate::bundle::SignedTx {
    use alloy::consensus::SignableTransaction;
    use alloy::eips::eip2718::Encodable2718;
    let env = alloy::consensus::TxEnvelope::from(tx.clone().into_signed(sig));
    crate::bundle::SignedTx {
        raw: env.encoded_2718().into(),
        hash: *env.tx_hash(),
        from: None,
        kind: None,
    }
}

/// Combines bundles of the same request (named for errors) into one.
pub fn combine(inputs: &[(String, Bundle)]) -> Result<Merged, TransferError> {
    let ((first_name, first), rest) = inputs
        .split_first()
        .ok_or_else(|| TransferError::Empty("no bundle to combine".into()))?;
    check_still_signing(first, first_name)?;
    for (name, b) in rest {
        check_still_signing(b, name)?;
        same_request(first, first_name, b, name)?;
    }
    let mut base = first.clone();
    base.signatures.clear();
    base.signed_tx = None;
    add_signatures(
        &base,
        inputs
            .iter()
            .flat_map(|(_, b)| b.signatures.iter().cloned()),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn names_the_first_differing_field() {
        let a = json!({"safe_tx": {"nonce": "1", "to": "0xaa"}, "chain_id": 1});
        let b = json!({"safe_tx": {"nonce": "2", "to": "0xaa"}, "chain_id": 1});
        assert_eq!(
            first_difference(&a, &b, ""),
            Some(("safe_tx.nonce".into(), "1".into(), "2".into()))
        );
        let c = json!({"safe_tx": null, "chain_id": 1});
        assert_eq!(first_difference(&a, &c, "").unwrap().0, "safe_tx");
        let d = json!({"actions": ["a", "b"]});
        let e = json!({"actions": ["a", "c"]});
        assert_eq!(first_difference(&d, &e, "").unwrap().0, "actions[1]");
        assert_eq!(first_difference(&a, &a, ""), None);
    }
}
