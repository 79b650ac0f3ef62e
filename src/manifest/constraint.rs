//! Argument constraints: `eq`, `one_of`, `min`/`max` (integers), and `any` (which must be written out).

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{I256, U256};
use std::cmp::Ordering;

/// A constraint on one argument (or on the ETH value), with literals already typed by the ABI.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// Any value (written `{ any = true }`).
    Any,
    /// Exactly this value.
    Eq(DynSolValue),
    /// One of these values.
    OneOf(Vec<DynSolValue>),
    /// An integer within bounds (inclusive).
    Range {
        /// Lower bound.
        min: Option<DynSolValue>,
        /// Upper bound.
        max: Option<DynSolValue>,
    },
}

/// The outcome of checking one value against a constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintCheck {
    /// The value satisfies the constraint; the text says which rule held.
    Held(String),
    /// The value breaks the constraint; the text says why.
    Broken(String),
}

/// Renders a value for humans: addresses checksummed, bytes as hex, integers in decimal.
pub fn show_value(v: &DynSolValue) -> String {
    match v {
        DynSolValue::Address(a) => a.to_checksum(None),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Bytes(b) => format!("0x{}", alloy::hex::encode(b)),
        DynSolValue::FixedBytes(w, n) => format!("0x{}", alloy::hex::encode(&w[..*n])),
        DynSolValue::String(s) => format!("{s:?}"),
        DynSolValue::Function(f) => format!("0x{}", alloy::hex::encode(f.as_slice())),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
            format!(
                "[{}]",
                items.iter().map(show_value).collect::<Vec<_>>().join(", ")
            )
        }
        DynSolValue::Tuple(items) => {
            format!(
                "({})",
                items.iter().map(show_value).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// Compares two integer values of possibly different signedness. `None` if either is not an integer.
pub(crate) fn cmp_int(a: &DynSolValue, b: &DynSolValue) -> Option<Ordering> {
    enum N {
        U(U256),
        I(I256),
    }
    let n = |v: &DynSolValue| match v {
        DynSolValue::Uint(u, _) => Some(N::U(*u)),
        DynSolValue::Int(i, _) => Some(N::I(*i)),
        _ => None,
    };
    match (n(a)?, n(b)?) {
        (N::U(x), N::U(y)) => Some(x.cmp(&y)),
        (N::I(x), N::I(y)) => Some(x.cmp(&y)),
        (N::U(x), N::I(y)) => Some(if y.is_negative() {
            Ordering::Greater
        } else {
            x.cmp(&y.into_raw())
        }),
        (N::I(x), N::U(y)) => Some(if x.is_negative() {
            Ordering::Less
        } else {
            x.into_raw().cmp(&y)
        }),
    }
}

impl Constraint {
    /// Checks a decoded value.
    pub fn check(&self, v: &DynSolValue) -> ConstraintCheck {
        match self {
            Constraint::Any => ConstraintCheck::Held("any value allowed".into()),
            Constraint::Eq(want) => {
                if want == v {
                    ConstraintCheck::Held(format!("== {}", show_value(want)))
                } else {
                    ConstraintCheck::Broken(format!(
                        "is {}, the manifest requires {}",
                        show_value(v),
                        show_value(want)
                    ))
                }
            }
            Constraint::OneOf(list) => {
                if list.contains(v) {
                    ConstraintCheck::Held(format!("{} is listed", show_value(v)))
                } else {
                    ConstraintCheck::Broken(format!(
                        "is {}, not one of the manifest's [{}]",
                        show_value(v),
                        list.iter().map(show_value).collect::<Vec<_>>().join(", ")
                    ))
                }
            }
            Constraint::Range { min, max } => {
                if let Some(lo) = min {
                    match cmp_int(v, lo) {
                        Some(Ordering::Less) => {
                            return ConstraintCheck::Broken(format!(
                                "is {}, below the manifest's min {}",
                                show_value(v),
                                show_value(lo)
                            ))
                        }
                        None => return ConstraintCheck::Broken("is not an integer".into()),
                        _ => {}
                    }
                }
                if let Some(hi) = max {
                    match cmp_int(v, hi) {
                        Some(Ordering::Greater) => {
                            return ConstraintCheck::Broken(format!(
                                "is {}, above the manifest's max {}",
                                show_value(v),
                                show_value(hi)
                            ))
                        }
                        None => return ConstraintCheck::Broken("is not an integer".into()),
                        _ => {}
                    }
                }
                let lo = min.as_ref().map_or("-inf".to_string(), show_value);
                let hi = max.as_ref().map_or("+inf".to_string(), show_value);
                ConstraintCheck::Held(format!("{} within [{lo}, {hi}]", show_value(v)))
            }
        }
    }

    /// A short description for `manifest show`.
    pub fn describe(&self) -> String {
        match self {
            Constraint::Any => "any".into(),
            Constraint::Eq(v) => format!("== {}", show_value(v)),
            Constraint::OneOf(l) => {
                format!(
                    "one of [{}]",
                    l.iter().map(show_value).collect::<Vec<_>>().join(", ")
                )
            }
            Constraint::Range { min, max } => format!(
                "in [{}, {}]",
                min.as_ref().map_or_else(
                    || if matches!(max, Some(DynSolValue::Uint(..))) {
                        "0".to_string()
                    } else {
                        "-inf".to_string()
                    },
                    show_value
                ),
                max.as_ref().map_or("+inf".to_string(), show_value)
            ),
        }
    }
}
