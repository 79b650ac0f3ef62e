//! The built-in Ledger simulator — a TEST AND DRILL DEVICE, never a wallet. It serves Speculos' raw-APDU
//! TCP protocol and answers as the Ethereum app does: keys derived from a BIP39 mnemonic by BIP32
//! (default: Speculos' default seed, so addresses equal a real Speculos), RFC 6979 signatures with low s,
//! the blind-signing setting (0x6a80 for calldata or hashed EIP-712 when off), and approve / reject /
//! locked / dashboard modes. It reproduces PROTOCOLS.md's vectors observed from the real app byte for
//! byte (see the tests).

use super::apdu::{self, HdPath};
use alloy::consensus::transaction::RlpEcdsaDecodableTx;
use alloy::consensus::TxEip1559;
use alloy::primitives::{keccak256, B256};
use alloy::signers::local::coins_bip39::English;
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};
use alloy::signers::SignerSync;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Speculos' default seed (public: a test seed that holds nothing).
pub const SPECULOS_SEED: &str = "glory promote mansion idle axis finger extra february uncover one trip resource lawn turtle enact monster seven myth punch hobby comfort wild raise skin";

/// An instruction only the simulator answers (a real Ethereum app answers 0x6d00), so that every screen
/// can label the simulator as what it is.
pub const SIM_IDENTIFY: u8 = 0xFE;
/// The simulator's answer to [`SIM_IDENTIFY`].
pub const SIM_ID: &[u8] = b"breakglass-simulator";

/// How the simulated person and device behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimMode {
    /// The person approves every request.
    Approve,
    /// The person rejects every signing request (0x6985).
    Reject,
    /// The device is locked (0x5515).
    Locked,
    /// The dashboard is open, not the Ethereum app.
    Dashboard,
    /// Fault: the cable is pulled when the person approves a signing request (connection closed).
    Disconnect,
    /// Fault: the device never answers a signing request (the host must time out).
    Hang,
    /// Fault: a signing request is answered with garbage (random bytes, status 9000).
    Garbage,
    /// Fault: a signing request is answered with a short answer (3 bytes, status 9000).
    Short,
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// BIP39 phrase.
    pub mnemonic: String,
    /// Blind signing setting.
    pub blind_signing: bool,
    /// Behaviour.
    pub mode: SimMode,
    /// Ethereum app version reported.
    pub version: (u8, u8, u8),
    /// Delay before answering a signing request (a person reading the screen).
    pub approve_delay: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            mnemonic: SPECULOS_SEED.into(),
            blind_signing: true,
            mode: SimMode::Approve,
            version: (1, 22, 0),
            approve_delay: Duration::ZERO,
        }
    }
}

/// The simulated Ethereum app for one connection (multi-APDU requests keep state here).
pub struct SimApp {
    cfg: SimConfig,
    pending: Option<(u8, Vec<u8>)>,
    fault: Option<SimMode>,
}

const OK: [u8; 2] = [0x90, 0x00];

fn sw(code: u16) -> Vec<u8> {
    code.to_be_bytes().to_vec()
}

fn parse_path(data: &[u8]) -> Option<(HdPath, &[u8])> {
    let (&n, rest) = data.split_first()?;
    if n == 0 || n > 10 || rest.len() < 4 * n as usize {
        return None;
    }
    let idx = (0..n as usize)
        .map(|i| {
            u32::from_be_bytes([
                rest[4 * i],
                rest[4 * i + 1],
                rest[4 * i + 2],
                rest[4 * i + 3],
            ])
        })
        .collect();
    Some((HdPath(idx), &rest[4 * n as usize..]))
}

impl SimApp {
    /// A fresh app.
    pub fn new(cfg: SimConfig) -> Self {
        Self {
            cfg,
            pending: None,
            fault: None,
        }
    }

    fn key(&self, path: &HdPath) -> Option<PrivateKeySigner> {
        MnemonicBuilder::<English>::default()
            .phrase(self.cfg.mnemonic.as_str())
            .derivation_path(path.to_string())
            .ok()?
            .build()
            .ok()
    }

    fn signature_answer(&self, sig: alloy::primitives::Signature, typed_tx: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(67);
        out.push(if typed_tx {
            u8::from(sig.v())
        } else {
            27 + u8::from(sig.v())
        });
        out.extend_from_slice(&sig.r().to_be_bytes::<32>());
        out.extend_from_slice(&sig.s().to_be_bytes::<32>());
        out.extend_from_slice(&OK);
        out
    }

    fn user_decision(&mut self) -> Option<Vec<u8>> {
        if !self.cfg.approve_delay.is_zero() {
            std::thread::sleep(self.cfg.approve_delay);
        }
        match self.cfg.mode {
            SimMode::Reject => Some(sw(0x6985)),
            SimMode::Garbage => {
                let mut g: Vec<u8> = keccak256(b"breakglass simulator garbage").to_vec();
                g.extend_from_slice(&[0x42; 40]);
                g.extend_from_slice(&OK);
                Some(g)
            }
            SimMode::Short => Some(vec![0x1b, 0x01, 0x02, 0x90, 0x00]),
            SimMode::Disconnect | SimMode::Hang => {
                self.fault = Some(self.cfg.mode);
                Some(Vec::new())
            }
            _ => None,
        }
    }

    /// A connection-level fault the last request triggered (disconnect or hang), once.
    pub fn take_fault(&mut self) -> Option<SimMode> {
        self.fault.take()
    }

    /// Handles one APDU and returns the answer (data ‖ SW).
    pub fn handle(&mut self, a: &[u8]) -> Vec<u8> {
        if self.cfg.mode == SimMode::Locked {
            return sw(0x5515);
        }
        if a.len() < 5 || a.len() != 5 + a[4] as usize {
            return sw(0x6700);
        }
        let (cla, ins, p1, p2, data) = (a[0], a[1], a[2], a[3], &a[5..]);
        if cla == 0xB0 && ins == 0x01 {
            let (name, version) = if self.cfg.mode == SimMode::Dashboard {
                ("BOLOS".to_string(), "1.1.0".to_string())
            } else {
                (
                    "Ethereum".to_string(),
                    format!(
                        "{}.{}.{}",
                        self.cfg.version.0, self.cfg.version.1, self.cfg.version.2
                    ),
                )
            };
            let mut out = vec![1, name.len() as u8];
            out.extend_from_slice(name.as_bytes());
            out.push(version.len() as u8);
            out.extend_from_slice(version.as_bytes());
            out.extend_from_slice(&[1, 0]);
            out.extend_from_slice(&OK);
            return out;
        }
        if cla == apdu::CLA && ins == SIM_IDENTIFY {
            let mut out = SIM_ID.to_vec();
            out.extend_from_slice(&OK);
            return out;
        }
        if self.cfg.mode == SimMode::Dashboard {
            return sw(0x6e00);
        }
        if cla != apdu::CLA {
            return sw(0x6e00);
        }
        match ins {
            apdu::INS_GET_APP_CONFIGURATION => {
                let flags = 0x02 | u8::from(self.cfg.blind_signing);
                let v = self.cfg.version;
                vec![flags, v.0, v.1, v.2, 0x90, 0x00]
            }
            apdu::INS_GET_PUBLIC_KEY => {
                let Some((path, _)) = parse_path(data) else {
                    return sw(0x6a80);
                };
                if p1 > 1 || p2 > 1 {
                    return sw(0x6b00);
                }
                let Some(key) = self.key(&path) else {
                    return sw(0x6a80);
                };
                if p1 == 1 {
                    if let Some(r) = self.user_decision() {
                        return r;
                    }
                }
                let pubkey = key.credential().verifying_key().to_encoded_point(false);
                let mut out = vec![65];
                out.extend_from_slice(pubkey.as_bytes());
                let addr = key.address().to_checksum(None);
                out.push(40);
                out.extend_from_slice(addr.trim_start_matches("0x").as_bytes());
                out.extend_from_slice(&OK);
                out
            }
            apdu::INS_SIGN | apdu::INS_SIGN_PERSONAL_MESSAGE => {
                if p2 != 0 || (p1 != 0 && p1 != 0x80) {
                    return sw(0x6b00);
                }
                if p1 == 0 {
                    self.pending = Some((ins, data.to_vec()));
                } else {
                    match &mut self.pending {
                        Some((i, buf)) if *i == ins => buf.extend_from_slice(data),
                        _ => return sw(0x6a80),
                    }
                }
                let Some((_, buf)) = self.pending.clone() else {
                    return sw(0x6a80);
                };
                let Some((path, body)) = parse_path(&buf) else {
                    self.pending = None;
                    return sw(0x6a80);
                };
                if ins == apdu::INS_SIGN {
                    self.sign_tx(&path, body)
                } else {
                    self.sign_personal(&path, body)
                }
            }
            apdu::INS_SIGN_EIP712 => {
                if p1 != 0 || p2 != 0 {
                    return sw(0x6b00);
                }
                let Some((path, body)) = parse_path(data) else {
                    return sw(0x6a80);
                };
                if body.len() != 64 {
                    return sw(0x6a80);
                }
                if !self.cfg.blind_signing {
                    return sw(0x6a80);
                }
                let Some(key) = self.key(&path) else {
                    return sw(0x6a80);
                };
                if let Some(r) = self.user_decision() {
                    return r;
                }
                let mut buf = vec![0x19, 0x01];
                buf.extend_from_slice(body);
                match key.sign_hash_sync(&keccak256(&buf)) {
                    Ok(sig) => self.signature_answer(sig, false),
                    Err(_) => sw(0x6f00),
                }
            }
            _ => sw(0x6d00),
        }
    }

    fn sign_tx(&mut self, path: &HdPath, body: &[u8]) -> Vec<u8> {
        // Only typed EIP-1559 transactions: type byte then an RLP list; wait until it is complete.
        let Some((&ty, rlp)) = body.split_first() else {
            return OK.to_vec();
        };
        if ty != 0x02 {
            self.pending = None;
            return sw(0x6a80);
        }
        let mut hdr_buf = rlp;
        let header = match alloy::rlp::Header::decode(&mut hdr_buf) {
            Ok(h) if h.list => h,
            Ok(_) => {
                self.pending = None;
                return sw(0x6a80);
            }
            Err(alloy::rlp::Error::InputTooShort) => return OK.to_vec(),
            Err(_) => {
                self.pending = None;
                return sw(0x6a80);
            }
        };
        let total = rlp.len() - hdr_buf.len() + header.payload_length;
        if rlp.len() < total {
            return OK.to_vec(); // more chunks to come
        }
        self.pending = None;
        if rlp.len() > total {
            return sw(0x6a80);
        }
        let mut dec = rlp;
        let Ok(tx) = TxEip1559::rlp_decode(&mut dec) else {
            return sw(0x6a80);
        };
        if !tx.input.is_empty() && !self.cfg.blind_signing {
            return sw(0x6a80);
        }
        let Some(key) = self.key(path) else {
            return sw(0x6a80);
        };
        if let Some(r) = self.user_decision() {
            return r;
        }
        let digest: B256 = keccak256(body);
        match key.sign_hash_sync(&digest) {
            Ok(sig) => self.signature_answer(sig, true),
            Err(_) => sw(0x6f00),
        }
    }

    fn sign_personal(&mut self, path: &HdPath, body: &[u8]) -> Vec<u8> {
        if body.len() < 4 {
            return OK.to_vec();
        }
        let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
        let msg = &body[4..];
        if msg.len() < len {
            return OK.to_vec();
        }
        self.pending = None;
        if msg.len() > len {
            return sw(0x6a80);
        }
        let Some(key) = self.key(path) else {
            return sw(0x6a80);
        };
        if let Some(r) = self.user_decision() {
            return r;
        }
        match key.sign_message_sync(msg) {
            Ok(sig) => self.signature_answer(sig, false),
            Err(_) => sw(0x6f00),
        }
    }
}

fn serve_conn(mut s: TcpStream, cfg: SimConfig) {
    let mut app = SimApp::new(cfg);
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > 4096 {
            return;
        }
        let mut a = vec![0u8; n];
        if s.read_exact(&mut a).is_err() {
            return;
        }
        let ans = app.handle(&a);
        match app.take_fault() {
            Some(SimMode::Disconnect) => return,
            Some(_) => {
                // Hang: never answer; wait until the host gives up and closes the connection.
                let mut buf = [0u8; 1];
                let _ = s.read(&mut buf);
                return;
            }
            None => {}
        }
        let data_len = ans.len().saturating_sub(2) as u32;
        let mut out = data_len.to_be_bytes().to_vec();
        out.extend_from_slice(&ans);
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

/// Serves the simulator on `listener` until `stop` is set (one thread per connection).
pub fn serve(listener: TcpListener, cfg: SimConfig, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => {
                let _ = s.set_nonblocking(false);
                let c = cfg.clone();
                std::thread::spawn(move || serve_conn(s, c));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
