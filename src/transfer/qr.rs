//! QR codes of UR parts: encoded upper-case (QR alphanumeric mode holds `UR:`, bytewords, digits, `/`
//! and `-` at 5.5 bits a character instead of 8), at error-correction level M (15 % of the code may be
//! unreadable: a screen's glare or a terminal's line spacing), with one QR version for every frame of an
//! export so the animation does not jump in size. Rendered as Unicode half-blocks for a terminal or as
//! PNG; read back from PNG/JPEG with `rqrr`.

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

/// The texts of every QR code in an image (PNG or JPEG bytes); `name` names it in errors.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<Vec<String>, TransferError> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| TransferError::Image {
            path: name.into(),
            reason: format!("not a readable PNG or JPEG image: {e}"),
        })?
        .to_luma8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        img.get_pixel(x as u32, y as u32).0[0]
    });
    let grids = prepared.detect_grids();
    if grids.is_empty() {
        return Err(TransferError::Image {
            path: name.into(),
            reason: "no QR code found in it".into(),
        });
    }
    grids
        .iter()
        .map(|g| {
            g.decode()
                .map(|(_, text)| text)
                .map_err(|e| TransferError::Image {
                    path: name.into(),
                    reason: format!("a QR code in it cannot be read ({e}): take the picture again"),
                })
        })
        .collect()
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
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(w * px, h * px, |x, y| img[y * w * px + x]);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        assert_eq!(grids[0].decode().unwrap().1, part.to_ascii_uppercase());
    }

    #[test]
    fn not_an_image() {
        assert!(matches!(
            decode_image(b"hello", "x.png"),
            Err(TransferError::Image { .. })
        ));
    }
}
