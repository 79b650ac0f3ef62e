//! The built-in Ledger simulator — a TEST AND DRILL DEVICE, never a wallet. It serves Speculos' raw-APDU
//! TCP protocol and answers as the Ethereum app does: keys derived from a BIP39 mnemonic by BIP32
//! (default: Speculos' default seed, so addresses equal a real Speculos), RFC 6979 signatures with low s,
//! the blind-signing setting (0x6a80 for calldata or hashed EIP-712 when off), and approve / reject /
//! locked / dashboard modes. It reproduces PROTOCOLS.md's vectors observed from the real app byte for
//! byte (see the tests).

use super::apdu::{self, HdPath};
use super::eip712::{self, FieldType, StructDef};
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
    /// The app's "raw messages" setting: full EIP-712 shows every field (and works with blind signing off).
    pub raw_messages: bool,
    /// Print the pages of each full EIP-712 request to standard output (the `device-sim` process).
    pub print_pages: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            mnemonic: SPECULOS_SEED.into(),
            blind_signing: true,
            mode: SimMode::Approve,
            version: (1, 22, 0),
            approve_delay: Duration::ZERO,
            raw_messages: false,
            print_pages: false,
        }
    }
}

/// A full EIP-712 request being streamed (the real app's rules: definitions first, the domain's values
/// before the message's, exact value lengths).
#[derive(Debug, Default)]
struct Typed {
    defs: Vec<StructDef>,
    values_started: bool,
    /// (struct index, next field, encoded fields so far).
    filling: Option<(usize, usize, Vec<u8>)>,
    /// A value spanning APDUs: (declared length, bytes so far).
    partial: Option<(usize, Vec<u8>)>,
    domain_hash: Option<B256>,
    message_hash: Option<B256>,
    pages: Vec<String>,
}

/// The simulated Ethereum app for one connection (multi-APDU requests keep state here).
pub struct SimApp {
    cfg: SimConfig,
    pending: Option<(u8, Vec<u8>)>,
    fault: Option<SimMode>,
    typed: Typed,
    /// The pages of the last full EIP-712 request, as the real app would show them.
    pub last_pages: Vec<String>,
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
            typed: Typed::default(),
            last_pages: Vec::new(),
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
            eip712::INS_STRUCT_DEF => self.struct_def(p1, p2, data),
            eip712::INS_STRUCT_IMPL => self.struct_impl(p1, p2, data),
            apdu::INS_SIGN_EIP712 if p1 == 0 && p2 == 1 => self.sign_full(data),
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

    fn typed_fail(&mut self) -> Vec<u8> {
        self.typed = Typed::default();
        sw(0x6a80)
    }

    fn struct_def(&mut self, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
        if p1 != 0 {
            return sw(0x6b00);
        }
        if self.typed.values_started {
            // Definitions come before every value.
            return self.typed_fail();
        }
        match p2 {
            0x00 => match std::str::from_utf8(data) {
                Ok(name) if !name.is_empty() => {
                    self.typed.defs.push(StructDef {
                        name: name.to_string(),
                        fields: Vec::new(),
                    });
                    OK.to_vec()
                }
                _ => self.typed_fail(),
            },
            0xFF => {
                let Some((t, rest)) = FieldType::parse(data) else {
                    return self.typed_fail();
                };
                let Some((&n, key)) = rest.split_first() else {
                    return self.typed_fail();
                };
                let Ok(key) = std::str::from_utf8(key) else {
                    return self.typed_fail();
                };
                match (self.typed.defs.last_mut(), key.len() == n as usize && n > 0) {
                    (Some(d), true) => {
                        d.fields.push((key.to_string(), t));
                        OK.to_vec()
                    }
                    _ => self.typed_fail(),
                }
            }
            _ => sw(0x6b00),
        }
    }

    fn struct_impl(&mut self, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
        match p2 {
            0x00 => {
                // A root struct: the domain first, and the previous struct complete.
                let Ok(name) = std::str::from_utf8(data) else {
                    return self.typed_fail();
                };
                let Some(i) = self.typed.defs.iter().position(|d| d.name == name) else {
                    return self.typed_fail();
                };
                let domain_first = self.typed.domain_hash.is_some() || name == "EIP712Domain";
                if self.typed.filling.is_some() || !domain_first || p1 != 0 {
                    return self.typed_fail();
                }
                self.typed.values_started = true;
                self.typed.filling = Some((i, 0, Vec::new()));
                // As the real app 1.22.0: typed data without Ledger-signed filters opens with the
                // blind-signing warning, with "Raw messages" on too.
                if name == "EIP712Domain" {
                    self.typed.pages.push("Blind signing ahead".into());
                    self.typed.pages.push("Review typed message".into());
                }
                if self.cfg.raw_messages {
                    self.typed.pages.push(format!("Review struct {name}"));
                }
                OK.to_vec()
            }
            0xFF => {
                if !self.cfg.blind_signing && !self.cfg.raw_messages {
                    // "Blind signing must be enabled in settings", at the first value.
                    return self.typed_fail();
                }
                if p1 > 1 {
                    return sw(0x6b00);
                }
                let (want, mut buf, piece) = match self.typed.partial.take() {
                    Some((want, buf)) => (want, buf, data),
                    None => {
                        if data.len() < 2 {
                            return self.typed_fail();
                        }
                        let want = u16::from_be_bytes([data[0], data[1]]) as usize;
                        (want, Vec::new(), &data[2..])
                    }
                };
                buf.extend_from_slice(piece);
                if p1 == 1 {
                    if buf.len() >= want {
                        return self.typed_fail();
                    }
                    self.typed.partial = Some((want, buf));
                    return OK.to_vec();
                }
                if buf.len() != want {
                    return self.typed_fail();
                }
                self.typed_value(&buf)
            }
            _ => sw(0x6b00),
        }
    }

    fn typed_value(&mut self, v: &[u8]) -> Vec<u8> {
        let Some((si, fi, mut enc)) = self.typed.filling.take() else {
            return self.typed_fail();
        };
        let def = self.typed.defs[si].clone();
        let Some((name, t)) = def.fields.get(fi).cloned() else {
            return self.typed_fail();
        };
        let ok_len = match t {
            FieldType::Address => v.len() == 20,
            FieldType::Uint(n) | FieldType::Int(n) => !v.is_empty() && v.len() <= n as usize,
            FieldType::Bool => v.len() == 1 && v[0] <= 1,
            FieldType::FixedBytes(n) => v.len() == n as usize,
            FieldType::Bytes | FieldType::String => true,
        };
        if !ok_len {
            return self.typed_fail();
        }
        let mut word = [0u8; 32];
        match t {
            FieldType::Bytes | FieldType::String => word = keccak256(v).0,
            FieldType::FixedBytes(_) => word[..v.len()].copy_from_slice(v),
            FieldType::Int(_) if v[0] & 0x80 != 0 => {
                word = [0xFF; 32];
                word[32 - v.len()..].copy_from_slice(v);
            }
            _ => word[32 - v.len()..].copy_from_slice(v),
        }
        enc.extend_from_slice(&word);
        let text = eip712::device_text(t, v);
        if self.cfg.raw_messages || def.name == "EIP712Domain" {
            self.typed.pages.push(format!("{name} {text}"));
        }
        if fi + 1 < def.fields.len() {
            self.typed.filling = Some((si, fi + 1, enc));
            return OK.to_vec();
        }
        let mut pre = keccak256(def.encode_type().as_bytes()).to_vec();
        pre.extend_from_slice(&enc);
        let h = keccak256(&pre);
        if def.name == "EIP712Domain" {
            self.typed.domain_hash = Some(h);
        } else {
            self.typed.message_hash = Some(h);
            if !self.cfg.raw_messages {
                self.typed
                    .pages
                    .push(format!("Message hash {}", eip712::device_hash(&h)));
            }
        }
        OK.to_vec()
    }

    fn sign_full(&mut self, data: &[u8]) -> Vec<u8> {
        let typed = std::mem::take(&mut self.typed);
        let (Some(d), Some(m), None) = (typed.domain_hash, typed.message_hash, &typed.filling)
        else {
            return sw(0x6a80);
        };
        let Some((path, rest)) = parse_path(data) else {
            return sw(0x6a80);
        };
        if !rest.is_empty() {
            return sw(0x6a80);
        }
        let Some(key) = self.key(&path) else {
            return sw(0x6a80);
        };
        let mut pages = typed.pages;
        pages.push("Sign message".into());
        if self.cfg.print_pages {
            println!("DEVICE (simulated Ethereum app 1.22.0, full EIP-712) shows:");
            for p in &pages {
                println!("  | {}", crate::text::sanitize_line(p));
            }
        }
        self.last_pages = pages;
        if let Some(r) = self.user_decision() {
            return r;
        }
        let mut buf = vec![0x19, 0x01];
        buf.extend_from_slice(d.as_slice());
        buf.extend_from_slice(m.as_slice());
        match key.sign_hash_sync(&keccak256(&buf)) {
            Ok(sig) => self.signature_answer(sig, false),
            Err(_) => sw(0x6f00),
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
