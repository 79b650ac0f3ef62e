//! Full EIP-712 signing of a Safe transaction on the Ledger Ethereum app (1.9 and later): instead of two
//! hashes, the host streams the type definitions and every value; the app hashes them itself, shows the
//! Safe's chain and address (and with its "raw messages" setting every SafeTx field), and signs the same
//! digest as hashed mode. PROTOCOLS.md §2b has the byte layout and a vector observed on the real app.
//!
//! Also here, shared by the host's preview and the simulator: the pages the device shows, in its own
//! formatting, for the settings it may have.

use super::apdu::{HdPath, CHUNK, CLA, INS_SIGN_EIP712};
use crate::safe::{SafeDomain, SafeTxFields};
use alloy::primitives::{Address, U256};

/// INS of struct definitions.
pub const INS_STRUCT_DEF: u8 = 0x1A;
/// INS of struct values.
pub const INS_STRUCT_IMPL: u8 = 0x1C;

/// The type of a field, as the app's TypeDesc byte encodes it (the subset the Safe's types use, plus what
/// the simulator accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `uintN`, size in bytes.
    Uint(u8),
    /// `intN`, size in bytes.
    Int(u8),
    /// `address`.
    Address,
    /// `bool`.
    Bool,
    /// `string`.
    String,
    /// `bytesN`, size in bytes.
    FixedBytes(u8),
    /// `bytes`.
    Bytes,
}

impl FieldType {
    /// The Solidity name (for the type hash).
    pub fn sol_name(self) -> String {
        match self {
            FieldType::Uint(n) => format!("uint{}", u16::from(n) * 8),
            FieldType::Int(n) => format!("int{}", u16::from(n) * 8),
            FieldType::Address => "address".into(),
            FieldType::Bool => "bool".into(),
            FieldType::String => "string".into(),
            FieldType::FixedBytes(n) => format!("bytes{n}"),
            FieldType::Bytes => "bytes".into(),
        }
    }

    /// TypeDesc ‖ [size].
    fn desc(self) -> Vec<u8> {
        match self {
            FieldType::Int(n) => vec![0x41, n],
            FieldType::Uint(n) => vec![0x42, n],
            FieldType::Address => vec![0x03],
            FieldType::Bool => vec![0x04],
            FieldType::String => vec![0x05],
            FieldType::FixedBytes(n) => vec![0x46, n],
            FieldType::Bytes => vec![0x07],
        }
    }

    /// Parses TypeDesc ‖ [size] from the front of `d`; arrays and custom (struct) types are not
    /// accepted. Returns the type and the rest.
    pub fn parse(d: &[u8]) -> Option<(FieldType, &[u8])> {
        let (&desc, rest) = d.split_first()?;
        if desc & 0x80 != 0 || desc & 0x0F == 0 {
            return None;
        }
        let sized = desc & 0x40 != 0;
        let (size, rest) = if sized {
            let (&s, r) = rest.split_first()?;
            (Some(s), r)
        } else {
            (None, rest)
        };
        let t = match (desc & 0x0F, size) {
            (1, Some(n)) if (1..=32).contains(&n) => FieldType::Int(n),
            (2, Some(n)) if (1..=32).contains(&n) => FieldType::Uint(n),
            (3, None) => FieldType::Address,
            (4, None) => FieldType::Bool,
            (5, None) => FieldType::String,
            (6, Some(n)) if (1..=32).contains(&n) => FieldType::FixedBytes(n),
            (7, None) => FieldType::Bytes,
            _ => return None,
        };
        Some((t, rest))
    }
}

/// A struct type: its name and fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructDef {
    /// `EIP712Domain`, `SafeTx`.
    pub name: String,
    /// (name, type) in order.
    pub fields: Vec<(String, FieldType)>,
}

impl StructDef {
    /// `Name(type1 name1,…)`, hashed into the type hash.
    pub fn encode_type(&self) -> String {
        let f: Vec<String> = self
            .fields
            .iter()
            .map(|(n, t)| format!("{} {n}", t.sol_name()))
            .collect();
        format!("{}({})", self.name, f.join(","))
    }
}

/// A Safe transaction as typed data, ready to stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeTyped {
    /// The chain (in the domain unless the Safe is older than 1.3.0).
    pub chain_id: u64,
    /// The Safe (`verifyingContract`).
    pub safe: Address,
    /// The domain's shape.
    pub domain: SafeDomain,
    /// The SafeTx.
    pub tx: SafeTxFields,
}

/// A value the device shows and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer.
    Uint(U256),
    /// An address.
    Address(Address),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Value {
    /// The bytes streamed: integers minimal big-endian (zero is one `00` byte), addresses 20 bytes.
    pub fn wire(&self) -> Vec<u8> {
        match self {
            Value::Uint(v) => {
                let b = v.to_be_bytes::<32>();
                let first = b.iter().position(|x| *x != 0).unwrap_or(31);
                b[first..].to_vec()
            }
            Value::Address(a) => a.to_vec(),
            Value::Bytes(b) => b.clone(),
        }
    }
}

impl SafeTyped {
    /// `EIP712Domain` of this Safe version.
    pub fn domain_def(&self) -> StructDef {
        let mut fields = Vec::new();
        if self.domain.is_chain_id() {
            fields.push(("chainId".to_string(), FieldType::Uint(32)));
        }
        fields.push(("verifyingContract".to_string(), FieldType::Address));
        StructDef {
            name: "EIP712Domain".into(),
            fields,
        }
    }

    /// `SafeTx` of this Safe version (1.0.0 names `dataGas` where later versions have `baseGas`).
    pub fn safe_tx_def(&self) -> StructDef {
        let base = if self.domain == SafeDomain::NoChainIdDataGas {
            "dataGas"
        } else {
            "baseGas"
        };
        let f = |n: &str, t| (n.to_string(), t);
        StructDef {
            name: "SafeTx".into(),
            fields: vec![
                f("to", FieldType::Address),
                f("value", FieldType::Uint(32)),
                f("data", FieldType::Bytes),
                f("operation", FieldType::Uint(1)),
                f("safeTxGas", FieldType::Uint(32)),
                f(base, FieldType::Uint(32)),
                f("gasPrice", FieldType::Uint(32)),
                f("gasToken", FieldType::Address),
                f("refundReceiver", FieldType::Address),
                f("nonce", FieldType::Uint(32)),
            ],
        }
    }

    /// The domain's values, in definition order.
    pub fn domain_values(&self) -> Vec<Value> {
        let mut v = Vec::new();
        if self.domain.is_chain_id() {
            v.push(Value::Uint(U256::from(self.chain_id)));
        }
        v.push(Value::Address(self.safe));
        v
    }

    /// The SafeTx values, in definition order.
    pub fn safe_tx_values(&self) -> Vec<Value> {
        let t = &self.tx;
        vec![
            Value::Address(t.to),
            Value::Uint(t.value),
            Value::Bytes(t.data.to_vec()),
            Value::Uint(U256::from(t.operation as u8)),
            Value::Uint(t.safe_tx_gas),
            Value::Uint(t.base_gas),
            Value::Uint(t.gas_price),
            Value::Address(t.gas_token),
            Value::Address(t.refund_receiver),
            Value::Uint(t.nonce),
        ]
    }
}

fn apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + data.len());
    v.extend_from_slice(&[CLA, ins, p1, p2, data.len() as u8]);
    v.extend_from_slice(data);
    v
}

fn def_apdus(d: &StructDef, out: &mut Vec<Vec<u8>>) {
    out.push(apdu(INS_STRUCT_DEF, 0x00, 0x00, d.name.as_bytes()));
    for (name, t) in &d.fields {
        let mut data = t.desc();
        data.push(name.len() as u8);
        data.extend_from_slice(name.as_bytes());
        out.push(apdu(INS_STRUCT_DEF, 0x00, 0xFF, &data));
    }
}

/// One value: `u16 BE length ‖ bytes`, in 255-byte pieces; P1 = 01 on every piece but the last.
pub fn value_apdus(v: &[u8]) -> Vec<Vec<u8>> {
    let mut payload = (v.len() as u16).to_be_bytes().to_vec();
    payload.extend_from_slice(v);
    let pieces: Vec<&[u8]> = payload.chunks(CHUNK).collect();
    let n = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| apdu(INS_STRUCT_IMPL, u8::from(i + 1 < n), 0xFF, p))
        .collect()
}

/// Every APDU of a full-mode signature, in the order the app requires: both struct definitions, the
/// domain's root and values, the SafeTx's root and values, then SIGN_EIP712 with P2 = 01.
pub fn full_apdus(path: &HdPath, t: &SafeTyped) -> Vec<Vec<u8>> {
    let (dd, sd) = (t.domain_def(), t.safe_tx_def());
    let mut out = Vec::new();
    def_apdus(&dd, &mut out);
    def_apdus(&sd, &mut out);
    out.push(apdu(INS_STRUCT_IMPL, 0x00, 0x00, dd.name.as_bytes()));
    for v in t.domain_values() {
        out.extend(value_apdus(&v.wire()));
    }
    out.push(apdu(INS_STRUCT_IMPL, 0x00, 0x00, sd.name.as_bytes()));
    for v in t.safe_tx_values() {
        out.extend(value_apdus(&v.wire()));
    }
    out.push(apdu(INS_SIGN_EIP712, 0x00, 0x01, &path.encode()));
    out
}

/// How much of `data` the device shows before `...`.
pub const DEVICE_DATA_BYTES: usize = 187;

/// A value as the device shows it: EIP-55 addresses (the zero address raw), decimal integers, bytes as
/// `0x` + uppercase hex, whole up to 188 bytes, else the first 187 bytes and `...`.
pub fn device_text(t: FieldType, v: &[u8]) -> String {
    match t {
        FieldType::Address => {
            let a = Address::from_slice(&v[v.len().saturating_sub(20)..]);
            if a.is_zero() {
                format!("{a:#x}")
            } else {
                a.to_checksum(None)
            }
        }
        FieldType::Uint(_) | FieldType::Int(_) => U256::from_be_slice(v).to_string(),
        FieldType::Bool => (v.last() == Some(&1)).to_string(),
        FieldType::String => String::from_utf8_lossy(v).into_owned(),
        FieldType::Bytes | FieldType::FixedBytes(_) => {
            if v.len() <= DEVICE_DATA_BYTES + 1 {
                format!("0x{}", alloy::hex::encode_upper(v))
            } else {
                format!("0x{}...", alloy::hex::encode_upper(&v[..DEVICE_DATA_BYTES]))
            }
        }
    }
}

/// What the app's settings make it show for typed data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSettings {
    /// "Blind signing".
    pub blind_signing: bool,
    /// "Raw messages": every field of every struct.
    pub raw_messages: bool,
    /// "Transaction hash": domain and message hash pages at the end.
    pub transaction_hash: bool,
}

/// A hash as the device shows it on a page: `0x` and 64 uppercase hex digits.
pub fn device_hash(h: &alloy::primitives::B256) -> String {
    format!("0x{}", alloy::hex::encode_upper(h))
}

/// The pages of a full-mode Safe signature, as the Ethereum app 1.22.0 on a Nano S Plus shows them
/// (recorded from the real app under Speculos: tests/real_ledger.rs, firmware-notes/), or `None` when
/// these settings refuse it (blind signing and raw messages both off). Typed data without Ledger-signed
/// filters is not clear-signed, so every review opens with "Blind signing ahead" (both buttons accept the
/// risk; with "Raw messages" on even when the "Blind signing" setting is off) and "Review typed message".
/// Hashes are shown as `0x` + uppercase hex.
pub fn device_pages(t: &SafeTyped, s: DeviceSettings) -> Option<Vec<String>> {
    let (dd, sd) = (t.domain_def(), t.safe_tx_def());
    let dv = t.domain_values();
    let sv = t.safe_tx_values();
    let mut pages = Vec::new();
    if s.raw_messages {
        pages.push("Blind signing ahead".to_string());
        pages.push("Review typed message".to_string());
        pages.push("Review struct EIP712Domain".to_string());
        for ((n, ty), v) in dd.fields.iter().zip(&dv) {
            pages.push(format!("{n} {}", device_text(*ty, &v.wire())));
        }
        pages.push("Review struct SafeTx".to_string());
        for ((n, ty), v) in sd.fields.iter().zip(&sv) {
            let mut text = format!("{n} {}", device_text(*ty, &v.wire()));
            if n == "operation" && matches!(v, Value::Uint(x) if *x == U256::from(1)) {
                text.push_str("   (breakglass: = DELEGATECALL)");
            }
            pages.push(text);
        }
    } else if s.blind_signing {
        pages.push("Blind signing ahead".to_string());
        pages.push("Review typed message".to_string());
        for ((n, ty), v) in dd.fields.iter().zip(&dv) {
            pages.push(format!("{n} {}", device_text(*ty, &v.wire())));
        }
        let h = t.tx.hashes_in(t.domain, t.chain_id, t.safe);
        pages.push(format!("Message hash {}", device_hash(&h.message_hash)));
    } else {
        return None;
    }
    if s.transaction_hash {
        let h = t.tx.hashes_in(t.domain, t.chain_id, t.safe);
        pages.push(format!("Domain hash {}", device_hash(&h.domain_separator)));
        pages.push(format!("Message hash {}", device_hash(&h.message_hash)));
    }
    pages.push("Sign message".to_string());
    Some(pages)
}
