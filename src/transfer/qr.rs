//! QR codes of UR parts: encoded upper-case (QR alphanumeric mode holds `UR:`, bytewords, digits, `/`
//! and `-` at 5.5 bits a character instead of 8), at error-correction level M (15 % of the code may be
//! unreadable: a screen's glare or a terminal's line spacing), with one QR version for every frame of an
//! export so the animation does not jump in size. Rendered as Unicode half-blocks for a terminal or as
//! PNG; read back from PNG/JPEG with `rxing` (ZXing's reader).

use super::TransferError;
use qrcode::render::unicode::Dense1x2;
use qrcode::{Color, EcLevel, QrCode, Version};

/// The error-correction level of every QR code breakglass draws.
pub const EC_LEVEL: EcLevel = EcLevel::M;

/// Pixels per module in a PNG.
pub const PNG_MODULE_PX: u32 = 4;

/// Modules of quiet zone around a PNG code (the standard's 4).
const QUIET: usize = 4;

/// The smallest QR version (at [`EC_LEVEL`]) that holds every one of `parts`, upper-cased.
pub fn common_version(parts: &[String]) -> Result<i16, TransferError> {
    let longest = parts
        .iter()
        .max_by_key(|p| p.len())
        .ok_or_else(|| TransferError::Encode("no part to draw".into()))?
        .to_ascii_uppercase();
    (1..=40)
        .find(|v| QrCode::with_version(longest.as_bytes(), Version::Normal(*v), EC_LEVEL).is_ok())
        .ok_or_else(|| {
            TransferError::Encode(format!(
                "a part of {} characters does not fit any QR version",
                longest.len()
            ))
        })
}

/// Modules per side of a version.
pub fn modules(version: i16) -> usize {
    17 + 4 * version.max(1) as usize
}

/// The QR code of one part at a given version.
pub fn encode(part: &str, version: i16) -> Result<QrCode, TransferError> {
    QrCode::with_version(
        part.to_ascii_uppercase().as_bytes(),
        Version::Normal(version),
        EC_LEVEL,
    )
    .map_err(|e| TransferError::Encode(format!("QR version {version}: {e}")))
}

/// A code as Unicode half-blocks (two modules a character cell), with a quiet zone. For a dark
/// terminal background (the common case) the light modules are drawn as blocks; `light_background`
/// draws the dark ones instead.
pub fn to_terminal(code: &QrCode, light_background: bool) -> String {
    let (dark, light) = if light_background {
        (Dense1x2::Dark, Dense1x2::Light)
    } else {
        (Dense1x2::Light, Dense1x2::Dark)
    };
    code.render::<Dense1x2>()
        .dark_color(dark)
        .light_color(light)
        .quiet_zone(true)
        .build()
}

/// A code as an 8-bit greyscale PNG, `module_px` pixels a module, with a 4-module quiet zone.
pub fn to_png(code: &QrCode, module_px: u32) -> Result<Vec<u8>, TransferError> {
    use image::ImageEncoder;
    let n = code.width();
    let colors = code.to_colors();
    let px = module_px.max(1) as usize;
    let side = (n + 2 * QUIET) * px;
    let mut buf = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (mx, my) = (i % n + QUIET, i / n + QUIET);
            for y in my * px..(my + 1) * px {
                buf[y * side + mx * px..y * side + (mx + 1) * px].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&buf, side as u32, side as u32, image::ExtendedColorType::L8)
        .map_err(|e| TransferError::Encode(e.to_string()))?;
    Ok(out)
}

/// The largest image `decode_image` reads: a 16-bit side, and 256 MiB while decoding (a 48 MP phone
/// photo fits; a PNG that claims 100 000 × 100 000 pixels is refused before it is allocated).
const MAX_IMAGE_SIDE: u32 = 16_384;
const MAX_IMAGE_ALLOC: u64 = 256 << 20;

/// The text of the QR code in an image (PNG or JPEG bytes), as a webcam or a phone delivers it:
/// scaled, rotated, in perspective, JPEG-compressed, photographed off a screen with glare (rxing, the
/// Rust port of ZXing's reader, with its hybrid binariser and "try harder"). `name` names it in errors.
/// One code an image: what `export --png` writes and what a camera frames.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<Vec<String>, TransferError> {
    let bad = |reason: String| TransferError::Image {
        path: name.into(),
        reason,
    };
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(format!("not a readable PNG or JPEG image: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| bad(format!("not a readable PNG or JPEG image: {e}")))?
        .into_luma8();
    let (w, h) = img.dimensions();
    decode_luma(img.into_raw(), w, h).map_err(bad)
}

thread_local! {
    /// Set while this thread runs the QR reader: its panics are caught and reported as an unreadable image.
    static QUIET_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Puts a panic hook in front of the one in place (once per process) that prints nothing for a panic on
/// a thread inside the QR reader, and hands every other panic to the previous hook unchanged.
fn quiet_panics_here() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANIC.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
}

/// The text of the QR code in 8-bit greyscale pixels (row by row, `w` × `h`), or why there is none.
pub fn decode_luma(pixels: Vec<u8>, w: u32, h: u32) -> Result<Vec<String>, String> {
    use rxing::{BarcodeFormat, DecodeHintValue, DecodeHints, Exceptions};
    if w == 0 || h == 0 || pixels.len() as u64 != u64::from(w) * u64::from(h) {
        return Err("the image is empty".into());
    }
    // The reader is a large parser of untrusted pixels: a panic in it is an unreadable image, not a
    // crash of the signing tool, and its message ("thread 'main' panicked at …") is not printed.
    quiet_panics_here();
    QUIET_PANIC.with(|q| q.set(true));
    let found = std::panic::catch_unwind(move || {
        let mut hints = DecodeHints::default().with(DecodeHintValue::TryHarder(true));
        rxing::helpers::detect_in_luma_with_hints(
            pixels,
            w,
            h,
            Some(BarcodeFormat::QR_CODE),
            &mut hints,
        )
    })
    .map_err(|_| "the QR reader failed on it: take the picture again".to_string());
    QUIET_PANIC.with(|q| q.set(false));
    let found = found?;
    match found {
        Ok(r) => Ok(vec![r.getText().to_string()]),
        Err(Exceptions::NotFoundException(_)) => Err("no QR code found in it".into()),
        Err(e) => Err(format!(
            "a QR code in it cannot be read ({e}): take the picture again"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn png_round_trip_and_terminal_size() {
        let part = "ur:breakglass-bundle/3-7/lpaxatcfaxaelaoxaxfhdfdtaeaeae".to_string();
        let v = common_version(std::slice::from_ref(&part)).unwrap();
        let code = encode(&part, v).unwrap();
        let png = to_png(&code, PNG_MODULE_PX).unwrap();
        assert_eq!(
            decode_image(&png, "x.png").unwrap(),
            vec![part.to_ascii_uppercase()]
        );
        let t = to_terminal(&code, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), (modules(v) + 8).div_ceil(2));
        assert_eq!(lines[0].chars().count(), modules(v) + 8);
    }

    /// The terminal drawing, read back cell by cell into pixels as a camera would see a dark terminal
    /// (blocks are the light foreground), decodes to the part.
    #[test]
    fn terminal_drawing_decodes() {
        let part = "ur:breakglass-bundle/12-34/lpbsaycfahkecygthgrlmehdpfhkahkkkgcpiyjljpjnhsjy"
            .to_string();
        let v = common_version(std::slice::from_ref(&part)).unwrap();
        let text = to_terminal(&encode(&part, v).unwrap(), false);
        let rows: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        let (w, h, px) = (rows[0].len(), rows.len() * 2, 4);
        let mut img = vec![0u8; w * px * h * px];
        for (r, row) in rows.iter().enumerate() {
            for (c, ch) in row.iter().enumerate() {
                let (top, bottom) = match ch {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    _ => (false, false),
                };
                for (dy, light) in [(0, top), (1, bottom)] {
                    if light {
                        for y in (2 * r + dy) * px..(2 * r + dy + 1) * px {
                            img[y * w * px + c * px..y * w * px + (c + 1) * px].fill(255);
                        }
                    }
                }
            }
        }
        assert_eq!(
            decode_luma(img, (w * px) as u32, (h * px) as u32).unwrap(),
            vec![part.to_ascii_uppercase()]
        );
    }

    #[test]
    fn not_an_image() {
        assert!(matches!(
            decode_image(b"hello", "x.png"),
            Err(TransferError::Image { .. })
        ));
    }
}
