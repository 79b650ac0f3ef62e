//! ERC-4527 (EIPS/eip-4527.md): the QR protocol of Keystone, AirGap Vault and the wallets that talk to
//! them. A watch-only wallet shows an `eth-sign-request`; the offline signer answers with an
//! `eth-signature`. CBOR layouts as in Keystone's `ur-registry-eth` (maps with integer keys in
//! ascending order, definite lengths, shortest integers), so the UR strings are byte-identical to its
//! test vectors:
//!
//! - `eth-sign-request` (registry tag 401, untagged at the top of the UR): `{1: #37(uuid 16 bytes),
//!   2: sign data, 3: data type, 4: chain id, 5: #304(crypto-keypath), 6: address (20 bytes),
//!   7: origin}`; data types 1 legacy tx RLP, 2 EIP-712 typed data JSON, 3 personal message,
//!   4 typed tx `type ‖ rlp`. crypto-keypath: `{1: [index, hardened, …], 2: master fingerprint}`.
//! - `eth-signature` (tag 402): `{1: #37(uuid), 2: r ‖ s ‖ v, 3: origin}`.
//!
//! breakglass asks a Safe owner for the EIP-712 typed data of the SafeTx (data type 2), whose hash is
//! the safeTxHash, and a guardian EOA for its EIP-1559 transaction (data type 4). The request id is
//! derived from that hash, so the same request always has the same id and an answer can be matched to
//! its bundle on another machine.

use super::TransferError;
use crate::bundle::{recover_safe_signature, Bundle, SignatureEntry, VerifiedBundle};
use crate::manifest::Manifest;
use crate::safe::{SafeTxFields, SignatureKind};
use alloy::consensus::SignableTransaction;
use alloy::primitives::{keccak256, Address, Bytes, Signature, B256, U256};
use minicbor::data::{Tag, Type};
use serde_json::{json, Value};

/// UR type of a request.
pub const SIGN_REQUEST_TYPE: &str = "eth-sign-request";
/// UR type of an answer.
pub const SIGNATURE_TYPE: &str = "eth-signature";
/// CBOR tag of `eth-sign-request` (accepted, not written, at the top level).
pub const TAG_SIGN_REQUEST: u64 = 401;
/// CBOR tag of `eth-signature` (accepted, not written, at the top level).
pub const TAG_SIGNATURE: u64 = 402;
/// CBOR tag of a UUID (RFC 9562), the request id.
pub const TAG_UUID: u64 = 37;
/// CBOR tag of `crypto-keypath`.
pub const TAG_KEYPATH: u64 = 304;
/// The origin breakglass writes.
pub const ORIGIN: &str = "breakglass";
/// The device description of a signature that came back as an `eth-signature`.
pub const DEVICE: &str = "ERC-4527 QR signer";

/// What the sign data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// 1: a legacy transaction, RLP.
    Transaction,
    /// 2: EIP-712 typed data, JSON.
    TypedData,
    /// 3: a personal message.
    PersonalMessage,
    /// 4: a typed transaction, `type ‖ rlp`.
    TypedTransaction,
}

impl DataType {
    /// The wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            DataType::Transaction => 1,
            DataType::TypedData => 2,
            DataType::PersonalMessage => 3,
            DataType::TypedTransaction => 4,
        }
    }

    /// From the wire value.
    pub fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            1 => DataType::Transaction,
            2 => DataType::TypedData,
            3 => DataType::PersonalMessage,
            4 => DataType::TypedTransaction,
            _ => return None,
        })
    }
}

/// A `crypto-keypath`: BIP32 components (index, hardened) and the master key's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    /// Components, root first.
    pub components: Vec<(u32, bool)>,
    /// The master fingerprint (the signer checks it is its own seed), if known.
    pub source_fingerprint: Option<u32>,
}

impl KeyPath {
    /// From indices with the hardened bit (0x8000_0000), as `HdPath` holds them.
    pub fn from_indices(indices: &[u32], source_fingerprint: Option<u32>) -> Self {
        Self {
            components: indices
                .iter()
                .map(|i| (i & 0x7fff_ffff, i & 0x8000_0000 != 0))
                .collect(),
            source_fingerprint,
        }
    }

    /// `m/44'/60'/0'/0/0`.
    pub fn to_path_string(&self) -> String {
        let mut s = String::from("m");
        for (i, h) in &self.components {
            s.push_str(&format!("/{i}{}", if *h { "'" } else { "" }));
        }
        s
    }
}

/// An `eth-sign-request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthSignRequest {
    /// Request id (UUID bytes).
    pub request_id: Option<[u8; 16]>,
    /// What to sign.
    pub sign_data: Vec<u8>,
    /// What the sign data is.
    pub data_type: DataType,
    /// Chain id.
    pub chain_id: Option<u64>,
    /// Which key.
    pub derivation_path: KeyPath,
    /// The address expected to sign.
    pub address: Option<Address>,
    /// Who asks.
    pub origin: Option<String>,
}

/// An `eth-signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthSignature {
    /// The request it answers.
    pub request_id: Option<[u8; 16]>,
    /// r ‖ s ‖ v.
    pub signature: Vec<u8>,
    /// Which signer made it.
    pub origin: Option<String>,
}

type Enc = minicbor::Encoder<Vec<u8>>;

// Encoding into a Vec cannot fail: the `Result`s of minicbor's writer are `Infallible`.
fn put_uuid(e: &mut Enc, id: &[u8; 16]) {
    let _ = e.tag(Tag::new(TAG_UUID)).and_then(|e| e.bytes(id));
}

impl EthSignRequest {
    /// CBOR, as Keystone's `EthSignRequest.toCBOR()`.
    pub fn to_cbor(&self) -> Vec<u8> {
        let chain_id = self.chain_id.filter(|c| *c != 0);
        let n = 3
            + u64::from(self.request_id.is_some())
            + u64::from(chain_id.is_some())
            + u64::from(self.address.is_some())
            + u64::from(self.origin.is_some());
        let mut e = minicbor::Encoder::new(Vec::new());
        let _ = e.map(n);
        if let Some(id) = &self.request_id {
            let _ = e.u8(1);
            put_uuid(&mut e, id);
        }
        let _ = e.u8(2).and_then(|e| e.bytes(&self.sign_data));
        let _ = e.u8(3).and_then(|e| e.u8(self.data_type.as_u8()));
        if let Some(c) = chain_id {
            let _ = e.u8(4).and_then(|e| e.u64(c));
        }
        let p = &self.derivation_path;
        let _ = e
            .u8(5)
            .and_then(|e| e.tag(Tag::new(TAG_KEYPATH)))
            .and_then(|e| e.map(1 + u64::from(p.source_fingerprint.is_some())))
            .and_then(|e| e.u8(1))
            .and_then(|e| e.array(2 * p.components.len() as u64));
        for (i, h) in &p.components {
            let _ = e.u32(*i).and_then(|e| e.bool(*h));
        }
        if let Some(fp) = p.source_fingerprint {
            let _ = e.u8(2).and_then(|e| e.u32(fp));
        }
        if let Some(a) = &self.address {
            let _ = e.u8(6).and_then(|e| e.bytes(a.as_slice()));
        }
        if let Some(o) = &self.origin {
            let _ = e.u8(7).and_then(|e| e.str(o));
        }
        e.into_writer()
    }

    /// Parses the CBOR of a request (tagged 401 or not).
    pub fn from_cbor(cbor: &[u8]) -> Result<Self, TransferError> {
        let mut d = minicbor::Decoder::new(cbor);
        let bad = |r: String| TransferError::Malformed {
            what: "eth-sign-request",
            reason: r,
        };
        let me = |e: minicbor::decode::Error| bad(e.to_string());
        skip_tag(&mut d, TAG_SIGN_REQUEST).map_err(me)?;
        let n = d
            .map()
            .map_err(me)?
            .ok_or_else(|| bad("indefinite map".into()))?;
        let (mut request_id, mut sign_data, mut data_type, mut chain_id) = (None, None, None, None);
        let (mut path, mut address, mut origin) = (None, None, None);
        for _ in 0..n {
            match d.u64().map_err(me)? {
                1 => request_id = Some(read_uuid(&mut d).map_err(bad)?),
                2 => sign_data = Some(d.bytes().map_err(me)?.to_vec()),
                3 => {
                    let v = d.u64().map_err(me)?;
                    data_type =
                        Some(DataType::from_u64(v).ok_or_else(|| bad(format!("data type {v}")))?);
                }
                4 => chain_id = Some(d.u64().map_err(me)?),
                5 => path = Some(read_keypath(&mut d).map_err(bad)?),
                6 => {
                    let b = d.bytes().map_err(me)?;
                    if b.len() != 20 {
                        return Err(bad(format!("address of {} bytes", b.len())));
                    }
                    address = Some(Address::from_slice(b));
                }
                7 => origin = Some(d.str().map_err(me)?.to_string()),
                _ => d.skip().map_err(me)?,
            }
        }
        if d.position() != cbor.len() {
            return Err(bad("trailing bytes".into()));
        }
        Ok(Self {
            request_id,
            sign_data: sign_data.ok_or_else(|| bad("no sign data (key 2)".into()))?,
            data_type: data_type.ok_or_else(|| bad("no data type (key 3)".into()))?,
            chain_id,
            derivation_path: path.ok_or_else(|| bad("no derivation path (key 5)".into()))?,
            address,
            origin,
        })
    }
}

impl EthSignature {
    /// CBOR, as Keystone's `ETHSignature.toCBOR()`.
    pub fn to_cbor(&self) -> Vec<u8> {
        let n = 1 + u64::from(self.request_id.is_some()) + u64::from(self.origin.is_some());
        let mut e = minicbor::Encoder::new(Vec::new());
        let _ = e.map(n);
        if let Some(id) = &self.request_id {
            let _ = e.u8(1);
            put_uuid(&mut e, id);
        }
        let _ = e.u8(2).and_then(|e| e.bytes(&self.signature));
        if let Some(o) = &self.origin {
            let _ = e.u8(3).and_then(|e| e.str(o));
        }
        e.into_writer()
    }

    /// Parses the CBOR of an answer (tagged 402 or not).
    pub fn from_cbor(cbor: &[u8]) -> Result<Self, TransferError> {
        let mut d = minicbor::Decoder::new(cbor);
        let bad = |r: String| TransferError::Malformed {
            what: "eth-signature",
            reason: r,
        };
        let me = |e: minicbor::decode::Error| bad(e.to_string());
        skip_tag(&mut d, TAG_SIGNATURE).map_err(me)?;
        let n = d
            .map()
            .map_err(me)?
            .ok_or_else(|| bad("indefinite map".into()))?;
        let (mut request_id, mut signature, mut origin) = (None, None, None);
        for _ in 0..n {
            match d.u64().map_err(me)? {
                1 => request_id = Some(read_uuid(&mut d).map_err(bad)?),
                2 => signature = Some(d.bytes().map_err(me)?.to_vec()),
                3 => origin = Some(d.str().map_err(me)?.to_string()),
                _ => d.skip().map_err(me)?,
            }
        }
        if d.position() != cbor.len() {
            return Err(bad("trailing bytes".into()));
        }
        Ok(Self {
            request_id,
            signature: signature.ok_or_else(|| bad("no signature (key 2)".into()))?,
            origin,
        })
    }
}

fn skip_tag(d: &mut minicbor::Decoder<'_>, tag: u64) -> Result<(), minicbor::decode::Error> {
    if d.datatype()? == Type::Tag {
        let t = d.tag()?;
        if t.as_u64() != tag {
            return Err(minicbor::decode::Error::message(format!(
                "tag {} where {tag} or none was expected",
                t.as_u64()
            )));
        }
    }
    Ok(())
}

fn read_uuid(d: &mut minicbor::Decoder<'_>) -> Result<[u8; 16], String> {
    if d.datatype().map_err(|e| e.to_string())? == Type::Tag {
        let t = d.tag().map_err(|e| e.to_string())?;
        if t.as_u64() != TAG_UUID {
            return Err(format!("request id tagged {}, not {TAG_UUID}", t.as_u64()));
        }
    }
    let b = d.bytes().map_err(|e| e.to_string())?;
    <[u8; 16]>::try_from(b).map_err(|_| format!("request id of {} bytes, not 16", b.len()))
}

fn read_keypath(d: &mut minicbor::Decoder<'_>) -> Result<KeyPath, String> {
    let s = |e: minicbor::decode::Error| e.to_string();
    if d.datatype().map_err(s)? == Type::Tag {
        let t = d.tag().map_err(s)?;
        if t.as_u64() != TAG_KEYPATH {
            return Err(format!(
                "derivation path tagged {}, not {TAG_KEYPATH}",
                t.as_u64()
            ));
        }
    }
    let n = d.map().map_err(s)?.ok_or("indefinite keypath map")?;
    let mut kp = KeyPath {
        components: Vec::new(),
        source_fingerprint: None,
    };
    for _ in 0..n {
        match d.u64().map_err(s)? {
            1 => {
                let len = d.array().map_err(s)?.ok_or("indefinite path array")?;
                if len % 2 != 0 || len > 40 {
                    return Err(format!("path array of {len} items"));
                }
                for _ in 0..len / 2 {
                    if d.datatype().map_err(s)? == Type::Array {
                        return Err("wildcard path components are not signable".into());
                    }
                    let i = d.u32().map_err(s)?;
                    let h = d.bool().map_err(s)?;
                    kp.components.push((i, h));
                }
            }
            2 => kp.source_fingerprint = Some(d.u32().map_err(s)?),
            _ => d.skip().map_err(s)?,
        }
    }
    Ok(kp)
}

/// The request id of a hash: the first 16 bytes of `keccak256("breakglass/erc4527-request-id:" ‖ hash)`
/// laid out as a version-4 UUID (its 122 free bits are the hash's instead of random ones), so the same
/// request always has the same id. Not version 8 ("custom"), which would say it better: the `uuid` 8
/// package under Keystone's JavaScript libraries refuses to print any version but 1–5.
pub fn request_id(hash: &B256) -> [u8; 16] {
    let h = keccak256(
        [
            b"breakglass/erc4527-request-id:".as_slice(),
            hash.as_slice(),
        ]
        .concat(),
    );
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn uuid_string(id: &[u8; 16]) -> String {
    let h = alloy::hex::encode(id);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The hash a bundle's signatures sign: safeTxHash, or the EOA tx's signing hash.
pub fn request_hash(b: &Bundle) -> Option<B256> {
    b.safe_tx
        .as_ref()
        .map(|s| s.hashes.safe_tx_hash)
        .or_else(|| b.eoa_tx.as_ref().map(|e| e.signing_hash))
}

/// The EIP-712 typed data of a SafeTx (Safe ≥ 1.3.0 domain: chainId and verifyingContract), numbers
/// as decimal strings, as `eth_signTypedData_v4` takes it. Its hash is the safeTxHash.
pub fn safe_typed_data(
    chain_id: u64,
    safe: Address,
    tx: &SafeTxFields,
    shape: crate::safe::SafeDomain,
) -> Value {
    let field = |name: &str, ty: &str| json!({ "name": name, "type": ty });
    let dec = |v: U256| v.to_string();
    let mut td = json!({
        "types": {
            "EIP712Domain": if !shape.is_chain_id() {
                json!([field("verifyingContract", "address")])
            } else {
                json!([field("chainId", "uint256"), field("verifyingContract", "address")])
            },
            "SafeTx": [
                field("to", "address"),
                field("value", "uint256"),
                field("data", "bytes"),
                field("operation", "uint8"),
                field("safeTxGas", "uint256"),
                field(if shape == crate::safe::SafeDomain::NoChainIdDataGas { "dataGas" } else { "baseGas" }, "uint256"),
                field("gasPrice", "uint256"),
                field("gasToken", "address"),
                field("refundReceiver", "address"),
                field("nonce", "uint256"),
            ],
        },
        "primaryType": "SafeTx",
        "domain": if !shape.is_chain_id() {
            json!({ "verifyingContract": safe.to_checksum(None) })
        } else {
            json!({ "chainId": chain_id, "verifyingContract": safe.to_checksum(None) })
        },
        "message": {
            "to": tx.to.to_checksum(None),
            "value": dec(tx.value),
            "data": format!("{}", tx.data),
            "operation": tx.operation.as_u8().to_string(),
            "safeTxGas": dec(tx.safe_tx_gas),
            "baseGas": dec(tx.base_gas),
            "gasPrice": dec(tx.gas_price),
            "gasToken": tx.gas_token.to_checksum(None),
            "refundReceiver": tx.refund_receiver.to_checksum(None),
            "nonce": dec(tx.nonce),
        },
    });
    if shape == crate::safe::SafeDomain::NoChainIdDataGas {
        if let Some(m) = td["message"].as_object_mut() {
            if let Some(v) = m.remove("baseGas") {
                m.insert("dataGas".into(), v);
            }
        }
    }
    td
}

/// Who will sign and with which key.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// The address expected to sign: a Safe owner, or the EOA tx's sender.
    pub signer: Address,
    /// Derivation path indices (hardened bit 0x8000_0000).
    pub path: Vec<u32>,
    /// The signer's master fingerprint, if known.
    pub source_fingerprint: Option<u32>,
}

/// The `eth-sign-request` for a verified, allowed bundle (a QR signer is a signer: nothing that
/// verification refused reaches it). The Safe tx goes as EIP-712 typed data, the EOA tx as a typed
/// transaction.
pub fn sign_request(
    m: &Manifest,
    v: &VerifiedBundle,
    opts: &RequestOptions,
) -> Result<EthSignRequest, TransferError> {
    if !v.report().allowed {
        return Err(TransferError::Refused(
            "verification refused this bundle: breakglass never sends it to a signer".into(),
        ));
    }
    let b = v.bundle();
    super::combine::check_still_signing(b, "the bundle")?;
    if b.signatures.iter().any(|s| s.signer == opts.signer) {
        return Err(TransferError::WrongStep(format!(
            "{} already signed this bundle",
            opts.signer.to_checksum(None)
        )));
    }
    let (sign_data, data_type) = match (&b.safe_tx, &b.eoa_tx) {
        (Some(s), _) => {
            if !m.safe.as_ref().is_some_and(|c| c.is_owner(&opts.signer)) {
                return Err(TransferError::WrongSigner {
                    address: opts.signer,
                    reason: "is not an owner of the manifest's Safe".into(),
                });
            }
            let td = safe_typed_data(b.chain_id, s.safe, &s.tx, s.eip712_domain);
            let json = serde_json::to_vec(&td).map_err(|e| TransferError::Encode(e.to_string()))?;
            (json, DataType::TypedData)
        }
        (_, Some(e)) => {
            if e.from != opts.signer {
                return Err(TransferError::WrongSigner {
                    address: opts.signer,
                    reason: format!(
                        "is not the transaction's sender {}",
                        e.from.to_checksum(None)
                    ),
                });
            }
            (
                e.unsigned(b.chain_id).encoded_for_signing(),
                DataType::TypedTransaction,
            )
        }
        (None, None) => {
            return Err(TransferError::Bundle(
                crate::bundle::BundleError::Inconsistent("it holds no transaction".into()),
            ))
        }
    };
    let hash = request_hash(b).unwrap_or_default();
    Ok(EthSignRequest {
        request_id: Some(request_id(&hash)),
        sign_data,
        data_type,
        chain_id: Some(b.chain_id),
        derivation_path: KeyPath::from_indices(&opts.path, opts.source_fingerprint),
        address: Some(opts.signer),
        origin: Some(ORIGIN.into()),
    })
}

fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(40)
        .collect()
}

/// The signature entry for an `eth-signature` answering `b`'s request: the request id must be the
/// bundle's; the signer is recovered (v 27/28 or 0/1) and must be an owner of the manifest's Safe, or
/// the EOA tx's sender.
pub fn signature_entry(
    m: &Manifest,
    b: &Bundle,
    sig: &EthSignature,
) -> Result<SignatureEntry, TransferError> {
    let hash = request_hash(b).ok_or_else(|| {
        TransferError::Bundle(crate::bundle::BundleError::Inconsistent(
            "it holds no transaction".into(),
        ))
    })?;
    let expected = request_id(&hash);
    match &sig.request_id {
        None => {
            return Err(TransferError::Malformed {
                what: "eth-signature",
                reason: "it has no request id, so it cannot be matched to this bundle".into(),
            })
        }
        Some(id) if *id != expected => {
            return Err(TransferError::WrongRequestId {
                expected: uuid_string(&expected),
                found: uuid_string(id),
            })
        }
        Some(_) => {}
    }
    if sig.signature.len() != 65 {
        return Err(TransferError::BadSignature {
            reason: format!("is {} bytes, not 65 (r ‖ s ‖ v)", sig.signature.len()),
        });
    }
    let v = sig.signature[64];
    let parity = match v {
        0 | 1 => v == 1,
        27 | 28 => v == 28,
        _ => {
            return Err(TransferError::BadSignature {
                reason: format!("has v = {v}; 27/28 or 0/1 were expected"),
            })
        }
    };
    let r = U256::from_be_slice(&sig.signature[..32]);
    let s = U256::from_be_slice(&sig.signature[32..64]);
    let signature = Signature::new(r, s, parity);
    let device = match sig.origin.as_deref().map(printable) {
        Some(o) if !o.is_empty() => format!("{DEVICE} ({o})"),
        _ => DEVICE.to_string(),
    };
    if b.safe_tx.is_some() {
        let mut raw = [0u8; 65];
        raw[..64].copy_from_slice(&sig.signature[..64]);
        raw[64] = 27 + u8::from(parity);
        let signer = recover_safe_signature(&raw, SignatureKind::Eip712, &hash)
            .map_err(|reason| TransferError::BadSignature { reason })?;
        if !m.safe.as_ref().is_some_and(|c| c.is_owner(&signer)) {
            return Err(TransferError::WrongSigner {
                address: signer,
                reason: "signed it (recovered from the signature), but is not an owner of the manifest's Safe".into(),
            });
        }
        return Ok(SignatureEntry {
            signer,
            signature: Bytes::copy_from_slice(&raw),
            kind: SignatureKind::Eip712,
            device: Some(device),
            mode: None,
        });
    }
    let signer =
        signature
            .recover_address_from_prehash(&hash)
            .map_err(|e| TransferError::BadSignature {
                reason: format!("does not recover: {e}"),
            })?;
    let from = b.eoa_tx.as_ref().map(|e| e.from).unwrap_or_default();
    if signer != from {
        return Err(TransferError::WrongSigner {
            address: signer,
            reason: format!(
                "signed it (recovered from the signature), but the transaction is from {}",
                from.to_checksum(None)
            ),
        });
    }
    Ok(SignatureEntry {
        signer,
        signature: Bytes::copy_from_slice(&signature.as_bytes()),
        kind: SignatureKind::Transaction,
        device: Some(device),
        mode: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn ur(t: &str, cbor: &[u8]) -> String {
        ur::ur::encode(cbor, &ur::Type::Custom(t))
    }

    fn keystone_id() -> [u8; 16] {
        let mut id = [0u8; 16];
        id.copy_from_slice(&alloy::hex::decode("9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d").unwrap());
        id
    }

    const RLP: &str = "f849808609184e72a00082271094000000000000000000000000000000000000000080a47f7465737432000000000000000000000000000000000000000000000000000000600057808080";
    const SIG: &str = "d4f0a7bcd95bba1fbb1051885054730e3f47064288575aacc102fbbf6a9a14daa066991e360d3e3406c20c00a40973eff37c7d641e5b351ec4a99bfe86f335f713";

    fn keystone_request(origin: Option<&str>) -> EthSignRequest {
        EthSignRequest {
            request_id: Some(keystone_id()),
            sign_data: alloy::hex::decode(RLP).unwrap(),
            data_type: DataType::Transaction,
            chain_id: Some(1),
            derivation_path: KeyPath {
                components: vec![(44, true), (1, true), (1, true), (0, false), (1, false)],
                source_fingerprint: Some(0x1234_5678),
            },
            address: None,
            origin: origin.map(String::from),
        }
    }

    /// Keystone's ur-registry-eth `__tests__/EthSignRequest.test.ts`: both vectors, byte for byte.
    #[test]
    fn keystone_sign_request_vectors() {
        let with_origin = keystone_request(Some("metamask"));
        let s = ur(SIGN_REQUEST_TYPE, &with_origin.to_cbor());
        assert_eq!(s, "ur:eth-sign-request/oladtpdagdndcawmgtfrkigrpmndutdnbtkgfssbjnaohdgryagalalnascsgljpnbaelfdibemwaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaelaoxlbjyihjkjyeyaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaehnaehglalalaaxadaaadahtaaddyoeadlecsdwykadykadykaewkadwkaocybgeehfksatisjnihjyhsjnhsjkjetlnndant");
        assert_eq!(
            EthSignRequest::from_cbor(&with_origin.to_cbor()).unwrap(),
            with_origin
        );
        let without = keystone_request(None);
        let s = ur(SIGN_REQUEST_TYPE, &without.to_cbor());
        assert_eq!(s, "ur:eth-sign-request/onadtpdagdndcawmgtfrkigrpmndutdnbtkgfssbjnaohdgryagalalnascsgljpnbaelfdibemwaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaelaoxlbjyihjkjyeyaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaehnaehglalalaaxadaaadahtaaddyoeadlecsdwykadykadykaewkadwkaocybgeehfkswdtklffd");
        assert_eq!(without.derivation_path.to_path_string(), "m/44'/1'/1'/0/1");
    }

    /// Keystone's `__tests__/EthSignature.test.ts` (without origin) and its later version with
    /// origin "keystone".
    #[test]
    fn keystone_signature_vectors() {
        let mut sig = EthSignature {
            request_id: Some(keystone_id()),
            signature: alloy::hex::decode(SIG).unwrap(),
            origin: None,
        };
        assert_eq!(ur(SIGNATURE_TYPE, &sig.to_cbor()), "ur:eth-signature/oeadtpdagdndcawmgtfrkigrpmndutdnbtkgfssbjnaohdfptywtosrftahprdctrkbegylogdghjkbafhflamfwlohghtpsseaozorsimnybbtnnbiynlckenbtfmeeamsabnaeoxasjkwswfkekiieckhpecckssptndzelnwfecylbwdlsgvazt");
        sig.origin = Some("keystone".into());
        assert_eq!(ur(SIGNATURE_TYPE, &sig.to_cbor()), "ur:eth-signature/otadtpdagdndcawmgtfrkigrpmndutdnbtkgfssbjnaohdfptywtosrftahprdctrkbegylogdghjkbafhflamfwlohghtpsseaozorsimnybbtnnbiynlckenbtfmeeamsabnaeoxasjkwswfkekiieckhpecckssptndzelnwfecylbwaxisjeihkkjkjyjljtihdwlkamiy");
        assert_eq!(EthSignature::from_cbor(&sig.to_cbor()).unwrap(), sig);
        // Tagged at the top level, as some encoders write it, also reads.
        let mut tagged = vec![0xd9, 0x01, 0x92];
        tagged.extend(sig.to_cbor());
        assert_eq!(EthSignature::from_cbor(&tagged).unwrap(), sig);
    }

    #[test]
    fn request_id_is_a_stable_v4_uuid() {
        let h = B256::repeat_byte(0x11);
        let id = request_id(&h);
        assert_eq!(id, request_id(&h));
        assert_ne!(id, request_id(&B256::repeat_byte(0x12)));
        assert_eq!(id[6] >> 4, 4);
        assert_eq!(id[8] >> 6, 0b10);
        let s = uuid_string(&id);
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
    }
}
