//! QR images as a webcam or a phone delivers them, made from breakglass's own clean PNG (or its terminal
//! drawing): scaled, rotated, in perspective, defocused, JPEG-compressed, and photographed off a screen
//! (the screen's grey black and dim white, its pixel grid beating with the sensor's as moiré, a glare
//! spot that washes out part of the code, sensor noise). Deterministic: the same inputs give the same
//! JPEG, so a failure can be looked at (`BREAKGLASS_KEEP_CAMERA_IMAGES=DIR` keeps them).

use image::{GrayImage, Luma};

/// How the picture is taken. Angles in degrees; `scale` is camera pixels per source pixel.
#[derive(Clone, Copy, Debug)]
pub struct Camera {
    /// Side of the square photograph, pixels.
    pub out: u32,
    pub scale: f64,
    pub angle_deg: f64,
    /// Perspective: the image is this much wider at the bottom than at the top (0.1 = 10 %).
    pub keystone: f64,
    /// Gaussian defocus, sigma in camera pixels (0 = sharp).
    pub blur: f32,
    /// Peak brightness a glare spot adds (0 = none); at 150 and more it saturates part of the code.
    pub glare: f64,
    /// Depth of the moiré stripes (0 = none, 0.15 = 15 % darker at their darkest).
    pub moire: f64,
    /// Uniform sensor noise, ± this much.
    pub noise: f64,
    /// JPEG quality, 1–100.
    pub quality: u8,
    /// What the screen makes of black and white.
    pub black: f64,
    pub white: f64,
}

impl Camera {
    /// A clean copy of the source at its own size (JPEG quality 90).
    pub const fn clean(out: u32) -> Self {
        Self {
            out,
            scale: 1.0,
            angle_deg: 0.0,
            keystone: 0.0,
            blur: 0.0,
            glare: 0.0,
            moire: 0.0,
            noise: 0.0,
            quality: 90,
            black: 0.0,
            white: 255.0,
        }
    }
}

/// The named conditions every part of a request must survive, for a source image of side `side`
/// (breakglass's PNG: 4 pixels a module, 4 modules of quiet zone).
pub fn conditions(side: u32) -> Vec<(&'static str, Camera)> {
    let s = f64::from(side);
    let sized = |f: f64| (s * f * 1.45) as u32;
    vec![
        // A webcam far away: 2.4 camera pixels a module.
        (
            "scaled-down-0.6",
            Camera {
                scale: 0.6,
                ..Camera::clean(sized(0.6))
            },
        ),
        // A phone close up.
        (
            "scaled-up-2.5",
            Camera {
                scale: 2.5,
                ..Camera::clean(sized(2.5))
            },
        ),
        // Held crooked, at the PNG's own 4 pixels a module.
        (
            "rotated-5deg",
            Camera {
                angle_deg: 5.0,
                ..Camera::clean(sized(1.0))
            },
        ),
        (
            "rotated-minus-5deg-in-perspective",
            Camera {
                angle_deg: -5.0,
                keystone: 0.12,
                scale: 1.3,
                ..Camera::clean(sized(1.3))
            },
        ),
        // A messaging app's recompression.
        (
            "jpeg-quality-20",
            Camera {
                quality: 20,
                ..Camera::clean(side)
            },
        ),
        // Everything at once: a phone photographing a laptop screen with a lamp behind the signer.
        (
            "screen-photo-glare",
            Camera {
                out: sized(2.2),
                scale: 2.2,
                angle_deg: -5.0,
                keystone: 0.12,
                blur: 1.2,
                glare: 200.0,
                moire: 0.15,
                noise: 12.0,
                quality: 60,
                black: 35.0,
                white: 205.0,
            },
        ),
        (
            "screen-photo-glare-far",
            Camera {
                out: sized(1.0),
                scale: 1.0,
                angle_deg: 5.0,
                keystone: 0.1,
                blur: 0.8,
                glare: 180.0,
                moire: 0.15,
                noise: 12.0,
                quality: 50,
                black: 35.0,
                white: 205.0,
            },
        ),
    ]
}

/// A small deterministic generator (no rand dependency): a 64-bit LCG, top 53 bits.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The photograph of `src` (centred) as JPEG bytes.
pub fn photograph(src: &GrayImage, c: Camera, seed: u64) -> Vec<u8> {
    let (sw, sh) = (f64::from(src.width()), f64::from(src.height()));
    let out = f64::from(c.out);
    let (sin, cos) = c.angle_deg.to_radians().sin_cos();
    let mut rng = Lcg(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut img = GrayImage::new(c.out, c.out);
    // The glare spot: upper right of centre, a sixth of the picture wide.
    let (gx, gy, gr) = (out * 0.62, out * 0.35, out * 0.16);
    for y in 0..c.out {
        for x in 0..c.out {
            // Camera pixel → source pixel: undo the keystone, the rotation and the scale, about the centres.
            let (u, v) = (f64::from(x) - out / 2.0, f64::from(y) - out / 2.0);
            let u = u / (1.0 + c.keystone * v / out);
            let su = (cos * u + sin * v) / c.scale + sw / 2.0;
            let sv = (-sin * u + cos * v) / c.scale + sh / 2.0;
            let val = if su < 0.0 || sv < 0.0 || su >= sw - 1.0 || sv >= sh - 1.0 {
                255.0
            } else {
                let (x0, y0) = (su.floor(), sv.floor());
                let (fx, fy) = (su - x0, sv - y0);
                let p = |dx: u32, dy: u32| {
                    f64::from(src.get_pixel(x0 as u32 + dx, y0 as u32 + dy).0[0])
                };
                p(0, 0) * (1.0 - fx) * (1.0 - fy)
                    + p(1, 0) * fx * (1.0 - fy)
                    + p(0, 1) * (1.0 - fx) * fy
                    + p(1, 1) * fx * fy
            };
            let mut l = c.black + (c.white - c.black) * val / 255.0;
            l *= 1.0 - c.moire * (0.5 + 0.5 * (f64::from(x) * 0.9 + f64::from(y) * 0.35).sin());
            let r2 = ((f64::from(x) - gx).powi(2) + (f64::from(y) - gy).powi(2)) / (gr * gr);
            l += c.glare * (-r2).exp();
            l += (rng.next() - 0.5) * 2.0 * c.noise;
            img.put_pixel(x, y, Luma([l.clamp(0.0, 255.0) as u8]));
        }
    }
    let img = if c.blur > 0.0 {
        image::imageops::blur(&img, c.blur)
    } else {
        img
    };
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, c.quality)
        .encode_image(&img)
        .unwrap();
    jpeg
}

/// breakglass's terminal drawing of a QR code (Unicode half-blocks, light modules as blocks on a dark
/// background) as a terminal puts it on screen: `cell` pixels wide, `2 × cell` tall (block elements
/// fill the whole cell), with a light grey foreground.
pub fn terminal_screen(text: &str, cell: u32) -> GrayImage {
    let rows: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let (line_h, margin) = (2 * cell, 4 * cell);
    let (w, h) = (
        cols * cell + 2 * margin,
        rows.len() as u32 * line_h + 2 * margin,
    );
    let mut img = GrayImage::from_pixel(w, h, Luma([24]));
    for (r, row) in rows.iter().enumerate() {
        for (c, ch) in row.iter().enumerate() {
            let (top, bottom) = match ch {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                _ => (false, false),
            };
            for (half, light) in [(0, top), (1, bottom)] {
                if !light {
                    continue;
                }
                let y0 = margin + r as u32 * line_h + half * cell;
                for y in y0..y0 + cell {
                    for x in margin + c as u32 * cell..margin + (c as u32 + 1) * cell {
                        img.put_pixel(x, y, Luma([222]));
                    }
                }
            }
        }
    }
    img
}
