//! New-block notifications over a WebSocket (`eth_subscribe("newHeads")`): a wake-up for the watcher, which
//! still reads every block by number from its cursor, so a lost or late notification never loses a block
//! (the watcher also polls, more slowly, while subscribed).

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// What the subscription reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsNote {
    /// Subscribed.
    Connected,
    /// A new head (its number).
    Head(u64),
    /// The connection failed or dropped (retried with backoff).
    Lost(String),
}

/// Checks the URL before anything starts: `ws://` only (a local node, or a tunnel to one).
pub fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("wss://") {
        return Err(
            "wss:// is not supported (no TLS WebSocket client is built in): use a ws:// URL to a local node or tunnel, or leave --ws-url out and poll over HTTP(S)".into(),
        );
    }
    if !url.starts_with("ws://") {
        return Err(format!("{url:?} is not a ws:// URL"));
    }
    Ok(())
}

fn connect(url: &str) -> Result<WebSocket<MaybeTlsStream<TcpStream>>, String> {
    let (mut ws, _) = tungstenite::connect(url).map_err(|e| e.to_string())?;
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        // Wake up regularly to notice `stop`.
        let _ = s.set_read_timeout(Some(Duration::from_millis(250)));
    }
    let sub = r#"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}"#;
    ws.send(Message::text(sub)).map_err(|e| e.to_string())?;
    Ok(ws)
}

fn head_number(text: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v["method"] != "eth_subscription" {
        return None;
    }
    let n = v["params"]["result"]["number"].as_str()?;
    u64::from_str_radix(n.strip_prefix("0x")?, 16).ok()
}

/// Follows new heads at `url` until `stop`, reconnecting with backoff (up to 5 s), reporting to `notes`.
pub fn follow(
    url: String,
    stop: Arc<AtomicBool>,
    notes: Sender<WsNote>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut backoff = Duration::from_millis(250);
        while !stop.load(Ordering::Relaxed) {
            let mut ws = match connect(&url) {
                Ok(ws) => {
                    backoff = Duration::from_millis(250);
                    if notes.send(WsNote::Connected).is_err() {
                        return;
                    }
                    ws
                }
                Err(e) => {
                    if notes.send(WsNote::Lost(e)).is_err() {
                        return;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            loop {
                if stop.load(Ordering::Relaxed) {
                    let _ = ws.close(None);
                    return;
                }
                match ws.read() {
                    Ok(Message::Text(t)) => {
                        if let Some(n) = head_number(t.as_str()) {
                            if notes.send(WsNote::Head(n)).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e))
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => {
                        if notes.send(WsNote::Lost(e.to_string())).is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
    })
}
