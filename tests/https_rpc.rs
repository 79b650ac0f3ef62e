//! HTTPS to the node: the binary's TLS (rustls with ring as its crypto, the platform verifier with the
//! system's roots) against a real TLS server in front of anvil, with certificates made by OpenSSL
//! (tests/fixtures/tls/gen.sh). A node whose certificate chains to a trusted CA is used; one whose CA is
//! not trusted is refused before any request reaches it, and nothing is written.

use crate::support::anvil::CHAIN_ID;
use crate::support::bin::Sandbox;
use crate::support::world::{Pins, World};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    crate::support::bin::repo()
        .join("tests/fixtures/tls")
        .join(name)
}

/// A TLS server on 127.0.0.1 that relays the plaintext to anvil's port: what an HTTPS RPC provider is.
struct TlsRelay {
    port: u16,
    /// TLS handshakes completed.
    handshakes: Arc<AtomicU64>,
    /// Plaintext bytes that reached anvil through TLS.
    bytes_up: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsRelay {
    fn start(upstream_port: u16) -> TlsRelay {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(fixture("server.pem"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(AtomicU64::new(0));
        let bytes_up = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, b, s) = (handshakes.clone(), bytes_up.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (config, h, b, s) = (config.clone(), h.clone(), b.clone(), s.clone());
                        std::thread::spawn(move || {
                            serve(client, upstream_port, config, &h, &b, &s)
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TlsRelay {
            port,
            handshakes,
            bytes_up,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn idle(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// One client connection: TLS with the client, plaintext with anvil, until either side closes.
fn serve(
    mut client: TcpStream,
    upstream_port: u16,
    config: Arc<rustls::ServerConfig>,
    handshakes: &AtomicU64,
    bytes_up: &AtomicU64,
    stop: &AtomicBool,
) {
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        return;
    };
    let tick = Some(Duration::from_millis(2));
    client.set_nonblocking(false).unwrap();
    client.set_read_timeout(tick).unwrap();
    upstream.set_read_timeout(tick).unwrap();
    let mut conn = rustls::ServerConnection::new(config).unwrap();
    let mut counted = false;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match conn.read_tls(&mut client) {
            Ok(0) => return,
            Ok(_) => {
                if conn.process_new_packets().is_err() {
                    let _ = conn.write_tls(&mut client);
                    return;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
        if !counted && !conn.is_handshaking() {
            counted = true;
            handshakes.fetch_add(1, Ordering::SeqCst);
        }
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if upstream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    bytes_up.fetch_add(n as u64, Ordering::SeqCst);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        match upstream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if conn.writer().write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
        while conn.wants_write() {
            match conn.write_tls(&mut client) {
                Ok(_) => {}
                Err(e) if idle(&e) => {}
                Err(_) => return,
            }
        }
    }
}

#[test]
fn https_node_with_a_trusted_certificate_is_used_and_an_untrusted_one_refused() {
    let w = World::deploy();
    let port: u16 = w
        .anvil
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap();
    let relay = TlsRelay::start(port);

    // Trusted: the node's certificate chains to the CA in SSL_CERT_FILE (as a company's own CA would
    // be added). compose checks the chain id and reads the Safe's nonce over HTTPS.
    let mut sb = Sandbox::new();
    sb.write("m.toml", w.manifest_text_extended(Pins::Right, CHAIN_ID));
    sb.env.push((
        "SSL_CERT_FILE".into(),
        fixture("ca.pem").display().to_string(),
    ));
    let url = relay.url();
    let r = sb.run(&[
        "--manifest",
        "m.toml",
        "--rpc-url",
        &url,
        "compose",
        "halt",
        "-o",
        "halt.json",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("halt.json")).unwrap()).unwrap();
    // Without a node compose has no nonce (a usage error): this one came over HTTPS.
    assert_eq!(bundle["safe_tx"]["nonce"], "0x0");
    assert!(relay.handshakes.load(Ordering::SeqCst) >= 1);
    let through_tls = relay.bytes_up.load(Ordering::SeqCst);
    assert!(through_tls > 0, "no request reached the node through TLS");

    // Untrusted: the same server, but only another CA is trusted. Refused, nothing written, and no
    // request got through.
    let mut sb2 = Sandbox::new();
    sb2.write("m.toml", w.manifest_text_extended(Pins::Right, CHAIN_ID));
    sb2.env.push((
        "SSL_CERT_FILE".into(),
        fixture("other-ca.pem").display().to_string(),
    ));
    let r = sb2.run(&[
        "--manifest",
        "m.toml",
        "--rpc-url",
        &url,
        "compose",
        "halt",
        "-o",
        "halt.json",
    ]);
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // Said as what it is (not "unreachable, check the node is running"), with what to do.
    assert!(
        r.stderr.contains("refused a secure connection")
            && r.stderr.contains("invalid peer certificate")
            && r.stderr.contains("SSL_CERT_FILE")
            && !r.stderr.contains("unreachable"),
        "the error should say the certificate is not trusted: {}",
        r.stderr
    );
    assert!(!sb2.path("halt.json").exists());
    assert_eq!(relay.bytes_up.load(Ordering::SeqCst), through_tls);
}

#[test]
fn without_certificate_authorities_http_still_works_and_https_says_why_not() {
    let w = World::deploy();
    let port: u16 = w
        .anvil
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap();
    let relay = TlsRelay::start(port);
    // A machine with no CA bundle (air-gapped, minimal), or SSL_CERT_FILE pointing nowhere: reqwest
    // used to panic building its client, whatever the URL.
    let mut sb = Sandbox::new();
    sb.write("m.toml", w.manifest_text_extended(Pins::Right, CHAIN_ID));
    std::fs::create_dir_all(sb.path("no-cas")).unwrap();
    let none = sb.path("none.pem").display().to_string();
    let dir = sb.path("no-cas").display().to_string();
    sb.env.push(("SSL_CERT_FILE".into(), none));
    sb.env.push(("SSL_CERT_DIR".into(), dir));
    let compose = |url: &str, out: &str| {
        sb.run(&[
            "--manifest",
            "m.toml",
            "--rpc-url",
            url,
            "compose",
            "halt",
            "-o",
            out,
        ])
    };
    // The local node over plain HTTP needs no certificate authority.
    let r = compose(&w.anvil.url, "http.json");
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(sb.path("http.json").exists());
    // HTTPS cannot work: a clear error (not a crash), what to do, nothing written, nothing sent.
    let r = compose(&relay.url(), "https.json");
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("cannot set up HTTPS")
            && r.stderr.contains("ca-certificates")
            && !r.stderr.contains("panicked"),
        "{}",
        r.stderr
    );
    assert!(!sb.path("https.json").exists());
    assert_eq!(relay.bytes_up.load(Ordering::SeqCst), 0);
}
