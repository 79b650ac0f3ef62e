//! The Ledger Ethereum app's APDUs (CLA 0xE0), as pure functions over bytes: encoding commands, parsing
//! answers, and turning status words into what a person should do. Facts: PROTOCOLS.md §2, checked
//! against LedgerHQ/app-ethereum `doc/ethapp.adoc` and Ledger's own `@ledgerhq/hw-app-eth` (the tests
//! replay what this module sends through it).

use alloy::primitives::{Address, Signature, B256, U256};

/// The Ethereum app's class byte.
pub const CLA: u8 = 0xE0;
/// GET_PUBLIC_KEY.
pub const INS_GET_PUBLIC_KEY: u8 = 0x02;
/// SIGN (transaction).
pub const INS_SIGN: u8 = 0x04;
/// GET_APP_CONFIGURATION.
pub const INS_GET_APP_CONFIGURATION: u8 = 0x06;
/// SIGN_PERSONAL_MESSAGE.
pub const INS_SIGN_PERSONAL_MESSAGE: u8 = 0x08;
/// SIGN_EIP712 (P2 = 0: hashed / "v0" mode).
pub const INS_SIGN_EIP712: u8 = 0x0C;
/// Most data one APDU carries.
pub const CHUNK: usize = 255;

/// A BIP32 path as the app wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdPath(pub Vec<u32>);

/// Ledger Live's path for account `n`: `m/44'/60'/n'/0/0`.
pub fn ledger_live_path(account: u32) -> HdPath {
    HdPath(vec![0x8000_002c, 0x8000_003c, 0x8000_0000 | account, 0, 0])
}

impl HdPath {
    /// Parses `m/44'/60'/0'/0/0` (also `h` for hardened).
    pub fn parse(s: &str) -> Result<Self, String> {
        let rest = s
            .trim()
            .strip_prefix("m/")
            .ok_or_else(|| format!("{s:?} does not start with m/"))?;
        let mut out = Vec::new();
        for part in rest.split('/') {
            let (num, hardened) = match part.strip_suffix('\'').or_else(|| part.strip_suffix('h')) {
                Some(n) => (n, true),
                None => (part, false),
            };
            let n: u32 = num
                .parse()
                .map_err(|_| format!("{part:?} in {s:?} is not a path index"))?;
            if n >= 0x8000_0000 {
                return Err(format!("index {n} in {s:?} is too large"));
            }
            out.push(if hardened { n | 0x8000_0000 } else { n });
        }
        if out.is_empty() || out.len() > 10 {
            return Err(format!(
                "{s:?} has {} levels; the Ledger takes 1 to 10",
                out.len()
            ));
        }
        Ok(HdPath(out))
    }

    /// `n ‖ n × u32 BE`.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + 4 * self.0.len());
        v.push(self.0.len() as u8);
        for i in &self.0 {
            v.extend_from_slice(&i.to_be_bytes());
        }
        v
    }
}

impl std::fmt::Display for HdPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "m")?;
        for i in &self.0 {
            if i & 0x8000_0000 != 0 {
                write!(f, "/{}'", i & 0x7fff_ffff)?;
            } else {
                write!(f, "/{i}")?;
            }
        }
        Ok(())
    }
}

fn apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + data.len());
    v.extend_from_slice(&[CLA, ins, p1, p2, data.len() as u8]);
    v.extend_from_slice(data);
    v
}

/// GET_PUBLIC_KEY (P1 0: silent, 1: show on screen; no chain code).
pub fn get_public_key(path: &HdPath, display: bool) -> Vec<u8> {
    apdu(INS_GET_PUBLIC_KEY, u8::from(display), 0, &path.encode())
}

/// GET_APP_CONFIGURATION.
pub fn get_app_configuration() -> Vec<u8> {
    apdu(INS_GET_APP_CONFIGURATION, 0, 0, &[])
}

/// The dashboard's "which app is open" command.
pub fn get_app_and_version() -> Vec<u8> {
    vec![0xB0, 0x01, 0x00, 0x00, 0x00]
}

/// Chunk size Ledger's own client (`@ledgerhq/hw-app-eth` `signPersonalMessage`) uses for messages; the
/// app accepts up to 255, but sending what Ledger's client sends keeps the bytes identical to it.
pub const PERSONAL_MESSAGE_CHUNK: usize = 150;

fn chunked(ins: u8, payload: &[u8]) -> Vec<Vec<u8>> {
    chunked_by(ins, payload, CHUNK)
}

fn chunked_by(ins: u8, payload: &[u8], size: usize) -> Vec<Vec<u8>> {
    payload
        .chunks(size)
        .enumerate()
        .map(|(i, c)| apdu(ins, if i == 0 { 0x00 } else { 0x80 }, 0x00, c))
        .collect()
}

/// SIGN of a typed transaction (`type ‖ rlp(fields)`): `path ‖ tx` in 255-byte APDUs.
pub fn sign_transaction(path: &HdPath, unsigned_tx: &[u8]) -> Vec<Vec<u8>> {
    let mut payload = path.encode();
    payload.extend_from_slice(unsigned_tx);
    chunked(INS_SIGN, &payload)
}

/// SIGN_PERSONAL_MESSAGE: `path ‖ u32 BE length ‖ message` in 150-byte APDUs (as hw-app-eth sends).
pub fn sign_personal_message(path: &HdPath, message: &[u8]) -> Vec<Vec<u8>> {
    let mut payload = path.encode();
    payload.extend_from_slice(&(message.len() as u32).to_be_bytes());
    payload.extend_from_slice(message);
    chunked_by(INS_SIGN_PERSONAL_MESSAGE, &payload, PERSONAL_MESSAGE_CHUNK)
}

/// SIGN_EIP712 in hashed mode: `path ‖ domainSeparator ‖ hashStruct(message)`.
pub fn sign_eip712_hashed(path: &HdPath, domain: &B256, message: &B256) -> Vec<u8> {
    let mut payload = path.encode();
    payload.extend_from_slice(domain.as_slice());
    payload.extend_from_slice(message.as_slice());
    apdu(INS_SIGN_EIP712, 0x00, 0x00, &payload)
}

/// Everything that can go wrong between the host and the Ethereum app, each with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// 6985.
    #[error("rejected on the device: nothing was signed")]
    Rejected,
    /// 6a80 where the request needs blind signing.
    #[error("the Ethereum app refused the data (0x6a80): enable blind signing in the Ethereum app's settings (Settings → Blind signing) — this request is {what}; if it is already on, the data is malformed")]
    BlindSigningOrInvalid {
        /// What was being signed.
        what: String,
    },
    /// 6a80 while the typed data of a full EIP-712 request streams.
    #[error("the Ethereum app refused the typed data (0x6a80): in the Ethereum app's settings turn on \"Raw messages\" to review every field of the Safe transaction on the device (or \"Blind signing\" to see the Safe, its chain and the message hash); if one is on already, update the Ethereum app, or report this")]
    TypedDataRefused,
    /// Full EIP-712 was asked for and the app is older than 1.9.
    #[error("the Ethereum app {version} has no full EIP-712 mode (it came in 1.9): update the Ethereum app in Ledger Live, or sign in hashed mode (the device then shows only two hashes)")]
    NoFullEip712 {
        /// The app's version.
        version: String,
    },
    /// 5515 / 6982.
    #[error("the device is locked: unlock it with your PIN and try again")]
    Locked,
    /// 6d00 / 6e00 / 6e01 / 6d02 / 650f / 5501, or the dashboard answered.
    #[error("the Ethereum app is not open ({}): open the Ethereum app on the device and try again", if detail.is_empty() { format!("the device answered {sw:#06x}") } else { detail.clone() })]
    AppNotOpen {
        /// Status word.
        sw: u16,
        /// What is open instead, if known.
        detail: String,
    },
    /// 6983 / 6b00 or another unexpected word.
    #[error("the device answered {sw:#06x} ({meaning}): update the Ethereum app, or report this")]
    Status {
        /// Status word.
        sw: u16,
        /// Its meaning.
        meaning: &'static str,
    },
    /// An answer shorter than it must be.
    #[error("the device's answer is too short: {got} bytes, expected {expected}; reconnect the device and try again")]
    ShortResponse {
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// An answer that makes no sense.
    #[error("the device's answer is malformed: {0}; reconnect the device and try again")]
    Malformed(String),
}

/// Splits an answer into data and status word, mapping errors. `what` says what was being signed, for
/// the 6a80 message.
pub fn check_status(answer: &[u8], what: &str) -> Result<Vec<u8>, LedgerError> {
    if answer.len() < 2 {
        return Err(LedgerError::ShortResponse {
            got: answer.len(),
            expected: 2,
        });
    }
    let (data, sw) = answer.split_at(answer.len() - 2);
    let sw = u16::from_be_bytes([sw[0], sw[1]]);
    match sw {
        0x9000 => Ok(data.to_vec()),
        0x6985 => Err(LedgerError::Rejected),
        0x6a80 => Err(LedgerError::BlindSigningOrInvalid {
            what: what.to_string(),
        }),
        0x5515 | 0x6982 => Err(LedgerError::Locked),
        0x6d00 | 0x6e00 | 0x6e01 | 0x6d02 | 0x650f | 0x5501 => Err(LedgerError::AppNotOpen {
            sw,
            detail: String::new(),
        }),
        0x6983 => Err(LedgerError::Status {
            sw,
            meaning: "wrong data length",
        }),
        0x6b00 => Err(LedgerError::Status {
            sw,
            meaning: "wrong P1/P2",
        }),
        _ => Err(LedgerError::Status {
            sw,
            meaning: "unknown status",
        }),
    }
}

/// A parsed GET_PUBLIC_KEY answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// 65-byte uncompressed key.
    pub key: Vec<u8>,
    /// The address the device reported, checked against the key.
    pub address: Address,
}

/// Parses GET_PUBLIC_KEY's data: `0x41 ‖ key(65) ‖ 0x28 ‖ 40 ASCII hex`. The address must be the key's.
pub fn parse_public_key(data: &[u8]) -> Result<PublicKey, LedgerError> {
    match data {
        [65, rest @ ..] if rest.len() >= 65 + 1 + 40 => {
            let key = &rest[..65];
            let alen = rest[65] as usize;
            if alen != 40 || rest.len() < 66 + alen {
                return Err(LedgerError::Malformed(format!(
                    "address length {alen}, expected 40"
                )));
            }
            let text = std::str::from_utf8(&rest[66..106])
                .map_err(|_| LedgerError::Malformed("address is not ASCII".into()))?;
            let reported: Address = format!("0x{text}")
                .parse()
                .map_err(|_| LedgerError::Malformed(format!("address {text:?} is not hex")))?;
            if key[0] != 0x04 {
                return Err(LedgerError::Malformed(
                    "public key is not uncompressed".into(),
                ));
            }
            let computed = Address::from_raw_public_key(&key[1..]);
            if computed != reported {
                return Err(LedgerError::Malformed(format!(
                    "the reported address {reported} is not the address of the reported key ({computed})"
                )));
            }
            Ok(PublicKey {
                key: key.to_vec(),
                address: reported,
            })
        }
        _ => Err(LedgerError::ShortResponse {
            got: data.len(),
            expected: 1 + 65 + 1 + 40,
        }),
    }
}

/// The app's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppConfig {
    /// Flags byte.
    pub flags: u8,
    /// Version.
    pub version: (u8, u8, u8),
}

impl AppConfig {
    /// Whether blind signing (flag 0x01) is on.
    pub fn blind_signing(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// `major.minor.patch`.
    pub fn version_string(&self) -> String {
        format!("{}.{}.{}", self.version.0, self.version.1, self.version.2)
    }
}

/// Parses GET_APP_CONFIGURATION's data: `flags ‖ major ‖ minor ‖ patch`.
pub fn parse_app_configuration(data: &[u8]) -> Result<AppConfig, LedgerError> {
    match data {
        [flags, major, minor, patch, ..] => Ok(AppConfig {
            flags: *flags,
            version: (*major, *minor, *patch),
        }),
        _ => Err(LedgerError::ShortResponse {
            got: data.len(),
            expected: 4,
        }),
    }
}

/// Parses the `B0 01` answer: `01 ‖ nameLen ‖ name ‖ verLen ‖ version ‖ …` → (name, version).
pub fn parse_app_and_version(data: &[u8]) -> Result<(String, String), LedgerError> {
    let bad = || LedgerError::Malformed("app name/version answer".into());
    let (&format, rest) = data.split_first().ok_or(LedgerError::ShortResponse {
        got: 0,
        expected: 3,
    })?;
    if format != 1 {
        return Err(bad());
    }
    let (&nlen, rest) = rest.split_first().ok_or_else(bad)?;
    let name = rest.get(..nlen as usize).ok_or_else(bad)?;
    let rest = &rest[nlen as usize..];
    let (&vlen, rest) = rest.split_first().ok_or_else(bad)?;
    let version = rest.get(..vlen as usize).ok_or_else(bad)?;
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(version).into_owned(),
    ))
}

/// Parses a signature answer `v ‖ r ‖ s`. For typed transactions v is the y-parity (0/1); for EIP-712
/// and personal messages it is 27/28.
pub fn parse_signature(data: &[u8]) -> Result<Signature, LedgerError> {
    if data.len() < 65 {
        return Err(LedgerError::ShortResponse {
            got: data.len(),
            expected: 65,
        });
    }
    if data.len() > 65 {
        return Err(LedgerError::Malformed(format!(
            "a signature answer is 65 bytes, this one is {}",
            data.len()
        )));
    }
    let v = data[0];
    let parity = match v {
        0 | 27 => false,
        1 | 28 => true,
        other => return Err(LedgerError::Malformed(format!("v byte {other}"))),
    };
    let r = U256::from_be_slice(&data[1..33]);
    let s = U256::from_be_slice(&data[33..65]);
    Ok(Signature::new(r, s, parity))
}
