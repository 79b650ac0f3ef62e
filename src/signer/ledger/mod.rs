//! The Ledger Ethereum app over any transport. The protocol lives in [`apdu`] (pure); transports only move
//! bytes: USB HID through `ledger-transport-hid`, Speculos' raw-APDU TCP port, and the built-in
//! simulator (which serves that same TCP protocol).

pub mod apdu;
pub mod eip712;
pub mod sim;

use super::{Signer, SignerError};
use crate::bundle::SignMode;
use alloy::consensus::TxEip1559;
use alloy::primitives::{Address, Signature, B256};
use apdu::{HdPath, LedgerError};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Transport failures, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No Ledger on USB.
    #[error("no Ledger found on USB: plug it in and unlock it; on Linux, install the udev rules from udev/ (see udev/README.md) and replug")]
    NoDevice,
    /// Permission denied opening the device.
    #[error("cannot open the Ledger ({0}): on Linux install the udev rules from udev/ (udev/README.md) and replug; if Ledger Live or a browser wallet is open, close it — another program holds the device")]
    CannotOpen(String),
    /// USB I/O error mid-exchange.
    #[error("the Ledger stopped answering ({0}): it was unplugged or went to sleep; reconnect, unlock, open the Ethereum app, and try again — nothing was signed")]
    Usb(String),
    /// TCP connect failed.
    #[error(
        "cannot connect to {addr}: {reason}; is Speculos or `breakglass device-sim` running there?"
    )]
    Connect {
        /// Address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// TCP I/O failed or timed out.
    #[error("the device at {addr} stopped answering ({reason}): nothing was signed")]
    Io {
        /// Address.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// Moves one APDU to the device and its answer (data ‖ status word) back.
pub trait Transport {
    /// One exchange.
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// What is on the other end.
    fn describe(&self) -> String;
    /// Whether this is a TCP (Speculos-protocol) transport.
    fn is_tcp(&self) -> bool {
        false
    }
}

/// Speculos' raw APDU port: request `u32 BE len ‖ apdu`; answer `u32 BE len(data) ‖ data ‖ SW`.
pub struct TcpTransport {
    stream: TcpStream,
    addr: String,
    label: String,
}

impl TcpTransport {
    /// Connects (5 s), with `timeout` for each answer (a person may take a while to approve).
    pub fn connect(addr: &str, timeout: Duration) -> Result<Self, TransportError> {
        let err = |reason: String| TransportError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let sock = addr
            .to_socket_addrs()
            .map_err(|e| err(e.to_string()))?
            .next()
            .ok_or_else(|| err("no address".into()))?;
        let stream = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
            .map_err(|e| err(e.to_string()))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| err(e.to_string()))?;
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream,
            addr: addr.to_string(),
            label: format!("Speculos-protocol device at {addr}"),
        })
    }
}

impl Transport for TcpTransport {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let timeout = self
            .stream
            .read_timeout()
            .ok()
            .flatten()
            .map_or(0, |d| d.as_secs());
        let addr = self.addr.clone();
        let io = move |e: std::io::Error| {
            let reason = match e.kind() {
                std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe => {
                    "the connection closed: the device was unplugged or the simulator stopped"
                        .to_string()
                }
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    format!(
                        "no answer within {timeout} s: nobody confirmed on the device, or it hung"
                    )
                }
                _ => e.to_string(),
            };
            TransportError::Io {
                addr: addr.clone(),
                reason,
            }
        };
        let mut req = Vec::with_capacity(4 + apdu.len());
        req.extend_from_slice(&(apdu.len() as u32).to_be_bytes());
        req.extend_from_slice(apdu);
        self.stream.write_all(&req).map_err(&io)?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).map_err(&io)?;
        let n = u32::from_be_bytes(len) as usize;
        if n > 4096 {
            return Err(TransportError::Io {
                addr: self.addr.clone(),
                reason: format!("answer length {n} is absurd"),
            });
        }
        let mut data = vec![0u8; n + 2];
        self.stream.read_exact(&mut data).map_err(&io)?;
        Ok(data)
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn is_tcp(&self) -> bool {
        true
    }
}

/// A Ledger on USB HID.
pub struct HidTransport {
    inner: ledger_transport_hid::TransportNativeHID,
    model: String,
}

/// One Ledger seen on USB.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UsbDevice {
    /// Model name from the product id.
    pub model: String,
    /// Product id.
    pub product_id: u16,
    /// hidraw path.
    pub path: String,
}

/// The model from a USB product id (PROTOCOLS.md §1).
pub fn model_name(pid: u16) -> &'static str {
    match pid >> 8 {
        0x10 => "Nano S",
        0x40 => "Nano X",
        0x50 => "Nano S Plus",
        0x60 => "Stax",
        0x70 => "Flex",
        0x80 => "Apex",
        0x00 => match pid {
            0x0001 => "Nano S (old firmware)",
            0x0004 => "Nano X (old firmware)",
            0x0005 => "Nano S Plus (old firmware)",
            _ => "Ledger (old firmware)",
        },
        _ => "Ledger (unknown model)",
    }
}

impl HidTransport {
    fn api() -> Result<ledger_transport_hid::hidapi::HidApi, TransportError> {
        ledger_transport_hid::hidapi::HidApi::new()
            .map_err(|e| TransportError::CannotOpen(e.to_string()))
    }

    /// Lists Ledgers on USB.
    pub fn list() -> Result<Vec<UsbDevice>, TransportError> {
        let api = Self::api()?;
        Ok(ledger_transport_hid::TransportNativeHID::list_ledgers(&api)
            .map(|d| UsbDevice {
                model: model_name(d.product_id()).to_string(),
                product_id: d.product_id(),
                path: d.path().to_string_lossy().into_owned(),
            })
            .collect())
    }

    /// Opens the first Ledger.
    pub fn open() -> Result<Self, TransportError> {
        let api = Self::api()?;
        let dev = ledger_transport_hid::TransportNativeHID::list_ledgers(&api)
            .next()
            .cloned()
            .ok_or(TransportError::NoDevice)?;
        let model = model_name(dev.product_id()).to_string();
        let inner = ledger_transport_hid::TransportNativeHID::open_device(&api, &dev)
            .map_err(|e| TransportError::CannotOpen(e.to_string()))?;
        Ok(Self { inner, model })
    }
}

impl Transport for HidTransport {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if apdu.len() < 5 {
            return Err(TransportError::Usb("APDU shorter than its header".into()));
        }
        let cmd = ledger_apdu::APDUCommand {
            cla: apdu[0],
            ins: apdu[1],
            p1: apdu[2],
            p2: apdu[3],
            data: apdu[5..].to_vec(),
        };
        let ans = self
            .inner
            .exchange(&cmd)
            .map_err(|e| TransportError::Usb(e.to_string()))?;
        let mut out = ans.data().to_vec();
        out.extend_from_slice(&ans.retcode().to_be_bytes());
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("Ledger {} (USB)", self.model)
    }
}

/// The Ethereum app through a transport.
pub struct LedgerSigner {
    transport: Box<dyn Transport>,
    path: HdPath,
    app: Option<(String, apdu::AppConfig)>,
    eip712: Eip712Mode,
}

/// How a Ledger is asked to sign a Safe transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Eip712Mode {
    /// Full EIP-712 when the app has it (1.9 and later), else hashed.
    #[default]
    Auto,
    /// Full EIP-712 or an error (the device shows the Safe transaction, or nothing is signed).
    Full,
    /// Hashed EIP-712 (the device shows the domain and message hashes).
    Hashed,
}

impl std::str::FromStr for Eip712Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "full" => Ok(Self::Full),
            "hashed" => Ok(Self::Hashed),
            _ => Err(format!("{s:?}: expected auto, full or hashed")),
        }
    }
}

impl LedgerSigner {
    /// A signer for `path` over `transport`.
    pub fn new(transport: Box<dyn Transport>, path: HdPath) -> Self {
        Self {
            transport,
            path,
            app: None,
            eip712: Eip712Mode::Auto,
        }
    }

    /// Chooses how Safe transactions are signed (default [`Eip712Mode::Auto`]).
    pub fn with_eip712(mut self, mode: Eip712Mode) -> Self {
        self.eip712 = mode;
        self
    }

    /// The derivation path.
    pub fn path(&self) -> &HdPath {
        &self.path
    }

    fn call(&mut self, apdu: &[u8], what: &str) -> Result<Vec<u8>, SignerError> {
        let ans = self.transport.exchange(apdu)?;
        Ok(apdu::check_status(&ans, what)?)
    }

    /// Checks that the Ethereum app is open and reads its configuration.
    pub fn check_app(&mut self) -> Result<(String, apdu::AppConfig), SignerError> {
        if let Some(a) = &self.app {
            return Ok(a.clone());
        }
        let ans = self.transport.exchange(&apdu::get_app_and_version())?;
        match apdu::check_status(&ans, "the open-app check") {
            Ok(data) => {
                let (name, version) = apdu::parse_app_and_version(&data)?;
                if name != "Ethereum" {
                    let detail = if name == "BOLOS" {
                        "the dashboard is open".to_string()
                    } else {
                        format!("the {name} app is open")
                    };
                    return Err(LedgerError::AppNotOpen { sw: 0x9000, detail }.into());
                }
                let _ = version;
            }
            Err(LedgerError::Status { .. }) => {} // old apps do not implement B0 01: fall through
            Err(e) => return Err(e.into()),
        }
        let cfg = apdu::parse_app_configuration(
            &self.call(&apdu::get_app_configuration(), "the app configuration")?,
        )?;
        let mut device = self.transport.describe();
        if self.transport.is_tcp() {
            let probe = [apdu::CLA, sim::SIM_IDENTIFY, 0, 0, 0];
            if let Ok(ans) = self.transport.exchange(&probe) {
                if apdu::check_status(&ans, "").is_ok_and(|d| d == sim::SIM_ID) {
                    device = device.replace(
                        "Speculos-protocol device",
                        "SIMULATED LEDGER (test/drill device)",
                    );
                }
            }
        }
        let app = (
            format!("{device}, Ethereum app {}", cfg.version_string()),
            cfg,
        );
        self.app = Some(app.clone());
        Ok(app)
    }

    /// Whether blind signing is on (needed for calldata and for hashed EIP-712).
    pub fn blind_signing(&mut self) -> Result<bool, SignerError> {
        Ok(self.check_app()?.1.blind_signing())
    }

    /// Asks the device to show the address on screen and waits for the person to confirm it.
    pub fn show_address(&mut self) -> Result<Address, SignerError> {
        self.check_app()?;
        let data = self.call(&apdu::get_public_key(&self.path, true), "the address")?;
        Ok(apdu::parse_public_key(&data)?.address)
    }
}

impl Signer for LedgerSigner {
    fn address(&mut self) -> Result<Address, SignerError> {
        self.check_app()?;
        let data = self.call(&apdu::get_public_key(&self.path, false), "the address")?;
        Ok(apdu::parse_public_key(&data)?.address)
    }

    fn label(&self) -> String {
        match &self.app {
            Some((l, _)) => format!("{l}, {}", self.path),
            None => format!("{}, {}", self.transport.describe(), self.path),
        }
    }

    fn sign_safe(&mut self, domain: &B256, message: &B256) -> Result<Signature, SignerError> {
        self.check_app()?;
        let data = self.call(
            &apdu::sign_eip712_hashed(&self.path, domain, message),
            "a Safe transaction (hashed EIP-712)",
        )?;
        Ok(apdu::parse_signature(&data)?)
    }

    fn full_eip712(&self) -> bool {
        self.eip712 != Eip712Mode::Hashed
            && self
                .app
                .as_ref()
                .is_some_and(|(_, c)| c.version >= (1, 9, 0))
    }

    fn blind_signing_setting(&self) -> Option<bool> {
        self.app.as_ref().map(|(_, c)| c.blind_signing())
    }

    /// Full EIP-712 when the app has it (1.9 and later): the device shows the Safe and its chain, and with
    /// "raw messages" every SafeTx field; older apps get hashed mode.
    fn sign_safe_typed(
        &mut self,
        typed: &eip712::SafeTyped,
        domain: &B256,
        message: &B256,
    ) -> Result<(Signature, SignMode), SignerError> {
        let (_, cfg) = self.check_app()?;
        let has_full = cfg.version >= (1, 9, 0);
        if self.eip712 == Eip712Mode::Full && !has_full {
            return Err(LedgerError::NoFullEip712 {
                version: cfg.version_string(),
            }
            .into());
        }
        if self.eip712 == Eip712Mode::Hashed || !has_full {
            return Ok((self.sign_safe(domain, message)?, SignMode::Eip712Hashed));
        }
        let apdus = eip712::full_apdus(&self.path, typed);
        let n = apdus.len();
        let mut last = Vec::new();
        for (i, a) in apdus.iter().enumerate() {
            let ans = self.transport.exchange(a)?;
            last = match apdu::check_status(&ans, "a Safe transaction (full EIP-712)") {
                Ok(d) => d,
                Err(LedgerError::BlindSigningOrInvalid { .. }) if i + 1 < n => {
                    return Err(LedgerError::TypedDataRefused.into())
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok((apdu::parse_signature(&last)?, SignMode::Eip712Full))
    }

    fn sign_tx(&mut self, tx: &TxEip1559) -> Result<Signature, SignerError> {
        use alloy::consensus::SignableTransaction;
        self.check_app()?;
        let what = if tx.input.is_empty() {
            "a transaction"
        } else {
            "a transaction with calldata"
        };
        let mut last = Vec::new();
        for a in apdu::sign_transaction(&self.path, &tx.encoded_for_signing()) {
            last = self.call(&a, what)?;
        }
        Ok(apdu::parse_signature(&last)?)
    }

    fn sign_personal(&mut self, message: &[u8]) -> Result<Signature, SignerError> {
        self.check_app()?;
        let mut last = Vec::new();
        for a in apdu::sign_personal_message(&self.path, message) {
            last = self.call(&a, "a message")?;
        }
        Ok(apdu::parse_signature(&last)?)
    }
}
