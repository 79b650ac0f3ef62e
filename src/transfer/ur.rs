//! BC-UR strings (BlockchainCommons bcr-2020-005) over the `ur` crate: single-part when the payload
//! fits one fragment, fountain-coded multipart otherwise; and a collector that takes parts in any order,
//! refuses damaged parts and parts of another message, and says which parts are missing.

use super::TransferError;
use std::collections::BTreeSet;

/// The largest fragment, in bytes, of a multipart UR. 210 bytes make parts of at most ~480 characters
/// (a fragment's bytewords, its 14-byte fountain header, a CRC and `UR:BREAKGLASS-BUNDLE/NN-NN/`): a
/// version-13 QR at error-correction level M, 69 modules a side, which with its quiet zone fits an
/// 80-column terminal. One signature (about 400 bytes) then takes two frames.
pub const MAX_FRAGMENT_LEN: usize = 210;

/// A source of UR part strings for one message.
pub struct UrStream {
    single: Option<String>,
    encoder: Option<ur::Encoder<'static>>,
    fragments: usize,
    emitted: usize,
}

impl std::fmt::Debug for UrStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrStream")
            .field("fragments", &self.fragments)
            .field("emitted", &self.emitted)
            .finish()
    }
}

impl UrStream {
    /// Encodes `payload` (CBOR) as a UR of `ur_type`: one part when it fits in `max_fragment_len`
    /// bytes, else fountain-coded parts.
    pub fn new(
        ur_type: &'static str,
        payload: &[u8],
        max_fragment_len: usize,
    ) -> Result<Self, TransferError> {
        if payload.is_empty() {
            return Err(TransferError::Encode("the payload is empty".into()));
        }
        if payload.len() <= max_fragment_len {
            let s = ur::ur::try_encode(payload, &ur::Type::Custom(ur_type))
                .map_err(|e| TransferError::Encode(e.to_string()))?;
            return Ok(Self {
                single: Some(s),
                encoder: None,
                fragments: 1,
                emitted: 0,
            });
        }
        let enc = ur::Encoder::new(payload, max_fragment_len, ur_type)
            .map_err(|e| TransferError::Encode(e.to_string()))?;
        Ok(Self {
            single: None,
            fragments: enc.fragment_count(),
            encoder: Some(enc),
            emitted: 0,
        })
    }

    /// How many fragments the message has (1 for a single-part UR): the fewest parts that decode.
    pub fn fragment_count(&self) -> usize {
        self.fragments
    }

    /// Whether it is a single-part UR (the same string every frame).
    pub fn is_single(&self) -> bool {
        self.single.is_some()
    }

    /// How many parts were emitted so far.
    pub fn emitted(&self) -> usize {
        self.emitted
    }

    /// The next part: the fragments in order, then fountain (mixed) parts without end; a single-part
    /// UR repeats.
    pub fn next_part(&mut self) -> Result<String, TransferError> {
        self.emitted += 1;
        match (&self.single, &mut self.encoder) {
            (Some(s), _) => Ok(s.clone()),
            (None, Some(e)) => e
                .next_part()
                .map_err(|e| TransferError::Encode(e.to_string())),
            (None, None) => Err(TransferError::Encode("no encoder".into())),
        }
    }

    /// The next `n` parts.
    pub fn take(&mut self, n: usize) -> Result<Vec<String>, TransferError> {
        (0..n).map(|_| self.next_part()).collect()
    }
}

/// The fountain header of one multipart part (the CBOR array `[seq, count, len, crc32, data]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartHeader {
    count: usize,
    message_len: usize,
    checksum: u32,
    fragment_len: usize,
}

/// The most fragments a message may have (a bound against parts made to exhaust memory: the fountain
/// decoder's work grows with the count they claim).
pub const MAX_FRAGMENTS: usize = 4096;

/// Collects UR parts in any order until the message is complete.
#[derive(Default)]
pub struct UrCollector {
    ur_type: Option<String>,
    single: Option<Vec<u8>>,
    header: Option<PartHeader>,
    decoder: ur::Decoder,
    seen: BTreeSet<usize>,
}

impl std::fmt::Debug for UrCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrCollector")
            .field("ur_type", &self.ur_type)
            .field("seen", &self.seen)
            .finish()
    }
}

fn corrupted(what: &str, reason: impl Into<String>) -> TransferError {
    TransferError::Corrupted {
        what: what.into(),
        reason: reason.into(),
    }
}

/// The beginning of a text for an error message, without control characters (it came from outside).
fn printable(t: &str) -> String {
    t.chars().filter(|c| !c.is_control()).take(40).collect()
}

fn valid_type(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl UrCollector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The UR type, once a part was received.
    pub fn ur_type(&self) -> Option<&str> {
        self.ur_type.as_deref()
    }

    /// Whether the message is complete.
    pub fn is_complete(&self) -> bool {
        self.single.is_some() || (self.header.is_some() && self.decoder.complete())
    }

    /// Distinct multipart sequence numbers received.
    pub fn received(&self) -> usize {
        self.seen.len().max(usize::from(self.single.is_some()))
    }

    /// Takes one part string (any case, surrounding spaces ignored); `what` names it in errors (e.g.
    /// "line 3" or "part-0002.png"). A repeated part is accepted and changes nothing.
    pub fn receive(&mut self, text: &str, what: &str) -> Result<(), TransferError> {
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("ur:")
            .ok_or_else(|| TransferError::NotUr {
                what: what.into(),
                text: printable(t),
            })?;
        let (ur_type, body) = rest.split_once('/').ok_or_else(|| TransferError::NotUr {
            what: what.into(),
            text: printable(t),
        })?;
        if !valid_type(ur_type) {
            return Err(TransferError::NotUr {
                what: what.into(),
                text: printable(t),
            });
        }
        if let Some(first) = &self.ur_type {
            if first != ur_type {
                return Err(TransferError::MixedTypes {
                    first: first.clone(),
                    other: ur_type.into(),
                    what: what.into(),
                });
            }
        }
        match body.split_once('/') {
            None => {
                let bytes = ur::bytewords::decode(body, ur::bytewords::Style::Minimal)
                    .map_err(|e| corrupted(what, e.to_string()))?;
                if self.header.is_some() {
                    return Err(TransferError::MixedMessages {
                        what: what.into(),
                        detail: "a single-part UR among multipart ones".into(),
                    });
                }
                if let Some(prev) = &self.single {
                    if prev != &bytes {
                        return Err(TransferError::MixedMessages {
                            what: what.into(),
                            detail: "two different single-part URs".into(),
                        });
                    }
                }
                self.single = Some(bytes);
            }
            Some((indices, words)) => {
                let (seq, count) = indices
                    .split_once('-')
                    .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
                    .filter(|(a, b)| *a > 0 && *b > 0)
                    .ok_or_else(|| corrupted(what, format!("bad part number {indices:?}")))?;
                let cbor = ur::bytewords::decode(words, ur::bytewords::Style::Minimal)
                    .map_err(|e| corrupted(what, e.to_string()))?;
                let (h, hseq) = parse_part_header(&cbor).map_err(|r| corrupted(what, r))?;
                if hseq != seq || h.count != count {
                    return Err(corrupted(
                        what,
                        format!(
                            "its text says part {seq}-{count}, its content {hseq}-{}",
                            h.count
                        ),
                    ));
                }
                if self.single.is_some() {
                    return Err(TransferError::MixedMessages {
                        what: what.into(),
                        detail: "a multipart UR after a single-part one".into(),
                    });
                }
                if let Some(first) = &self.header {
                    if *first != h {
                        return Err(TransferError::MixedMessages {
                            what: what.into(),
                            detail: format!(
                                "{} bytes in {} fragments with checksum {:08x}, not {} bytes in {} fragments with checksum {:08x}",
                                h.message_len, h.count, h.checksum, first.message_len, first.count, first.checksum
                            ),
                        });
                    }
                }
                if !self.decoder.complete() {
                    self.decoder
                        .receive(t)
                        .map_err(|e| corrupted(what, e.to_string()))?;
                }
                self.header = Some(h);
                self.seen.insert(seq);
            }
        }
        if self.ur_type.is_none() {
            self.ur_type = Some(ur_type.into());
        }
        Ok(())
    }

    /// The UR type and the message (CBOR), or which parts are missing.
    pub fn finish(self) -> Result<(String, Vec<u8>), TransferError> {
        let ur_type = match &self.ur_type {
            Some(t) => t.clone(),
            None => return Err(TransferError::Empty("no part was read".into())),
        };
        if let Some(s) = self.single {
            return Ok((ur_type, s));
        }
        let count = self.header.map_or(0, |h| h.count);
        if !self.decoder.complete() {
            return Err(TransferError::Incomplete {
                ur_type,
                count,
                resolved: self.decoder.resolved_fragment_count().unwrap_or(0),
                received: self.seen.len(),
                missing: (1..=count).filter(|n| !self.seen.contains(n)).collect(),
            });
        }
        match self.decoder.message() {
            Ok(Some(m)) => Ok((ur_type, m)),
            Ok(None) => Err(TransferError::Incomplete {
                ur_type,
                count,
                resolved: 0,
                received: self.seen.len(),
                missing: Vec::new(),
            }),
            Err(e) => Err(corrupted("the reassembled message", e.to_string())),
        }
    }
}

fn parse_part_header(cbor: &[u8]) -> Result<(PartHeader, usize), String> {
    let mut d = minicbor::Decoder::new(cbor);
    let bad = |e: minicbor::decode::Error| format!("not a fountain part: {e}");
    if d.array().map_err(bad)? != Some(5) {
        return Err("not a fountain part: not a 5-element array".into());
    }
    let seq = d.u32().map_err(bad)? as usize;
    let count = d.u32().map_err(bad)? as usize;
    let message_len = d.u32().map_err(bad)? as usize;
    let checksum = d.u32().map_err(bad)?;
    let data = d.bytes().map_err(bad)?;
    if count == 0 || message_len == 0 || data.is_empty() || d.position() != cbor.len() {
        return Err("not a fountain part: empty or trailing data".into());
    }
    if count > MAX_FRAGMENTS {
        return Err(format!(
            "it claims {count} fragments; at most {MAX_FRAGMENTS} are read"
        ));
    }
    // The encoder cuts `len` bytes into `count` fragments of ceil(len / count) bytes.
    if message_len.div_ceil(count) != data.len() {
        return Err(format!(
            "its fragment of {} bytes does not fit a message of {message_len} bytes in {count} fragments",
            data.len()
        ));
    }
    Ok((
        PartHeader {
            count,
            message_len,
            checksum,
            fragment_len: data.len(),
        },
        seq,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn message(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn single_part_round_trip_and_case() {
        let mut s = UrStream::new("breakglass-bundle", &message(50), 200).unwrap();
        assert!(s.is_single());
        let p = s.next_part().unwrap();
        assert!(p.starts_with("ur:breakglass-bundle/"));
        let mut c = UrCollector::new();
        c.receive(&p.to_ascii_uppercase(), "line 1").unwrap();
        c.receive(&p, "line 2").unwrap();
        assert_eq!(
            c.finish().unwrap(),
            ("breakglass-bundle".into(), message(50))
        );
    }

    #[test]
    fn multipart_any_order_with_losses() {
        let msg = message(2000);
        let mut s = UrStream::new("breakglass-bundle", &msg, 200).unwrap();
        assert_eq!(s.fragment_count(), 10);
        let mut parts = s.take(30).unwrap();
        // Drop three of the plain fragments and reverse: the mixed parts fill in.
        parts.remove(7);
        parts.remove(4);
        parts.remove(0);
        parts.reverse();
        let mut c = UrCollector::new();
        for (i, p) in parts.iter().enumerate() {
            c.receive(p, &format!("line {}", i + 1)).unwrap();
        }
        assert!(c.is_complete());
        assert_eq!(c.finish().unwrap().1, msg);
    }

    #[test]
    fn reports_missing_parts() {
        let mut s = UrStream::new("breakglass-bundle", &message(1000), 200).unwrap();
        let parts = s.take(5).unwrap();
        let mut c = UrCollector::new();
        for i in [0, 2, 3] {
            c.receive(&parts[i], "x").unwrap();
        }
        match c.finish() {
            Err(TransferError::Incomplete {
                count,
                missing,
                resolved,
                ..
            }) => {
                assert_eq!(count, 5);
                assert_eq!(resolved, 3);
                assert_eq!(missing, vec![2, 5]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_corruption_mixing_and_other_types() {
        let mut a = UrStream::new("breakglass-bundle", &message(1000), 200).unwrap();
        let mut b = UrStream::new("breakglass-bundle", &message(1001), 200).unwrap();
        let pa = a.take(3).unwrap();
        let pb = b.take(3).unwrap();
        let mut c = UrCollector::new();
        c.receive(&pa[0], "line 1").unwrap();
        let e = c.receive(&pb[1], "line 2").unwrap_err();
        assert!(matches!(e, TransferError::MixedMessages { .. }), "{e}");

        // One changed letter in the bytewords: CRC.
        let mut bad = pa[1].clone().into_bytes();
        let n = bad.len() - 10;
        bad[n] = if bad[n] == b'a' { b'e' } else { b'a' };
        let e = c
            .receive(&String::from_utf8(bad).unwrap(), "line 3")
            .unwrap_err();
        assert!(matches!(e, TransferError::Corrupted { .. }), "{e}");

        let other = ur::ur::encode(b"hello", &ur::Type::Custom("eth-signature"));
        let e = c.receive(&other, "line 4").unwrap_err();
        assert!(matches!(e, TransferError::MixedTypes { .. }), "{e}");

        let e = c.receive("hello", "line 5").unwrap_err();
        assert!(matches!(e, TransferError::NotUr { .. }), "{e}");
    }
}
