//! Calls that hand over control of a contract: ownership, the proxy admin, the default admin role. They
//! are critical whatever the manifest says (the policy), and a manifest that lets such an argument be
//! anything is warned about (the Radiant payload, Oct 2024, was a `transferOwnership` that a permissive
//! rule allowed). Keyed on selectors, never on names an ABI gives.

use alloy::primitives::hex;

/// Functions that hand over control of a contract: ownership, the proxy admin, and the default admin
/// role. Critical whatever ABI decodes them (the Radiant payload, Oct 2024, was a `transferOwnership`).
/// With their selectors written out, so that a lookup hashes nothing (`selectors_are_the_signatures_hashes`
/// checks each against keccak256 of its signature).
const CONTROL_CHANGES: &[([u8; 4], &str)] = &[
    (hex!("f2fde38b"), "transferOwnership(address)"),
    (hex!("715018a6"), "renounceOwnership()"),
    (hex!("8f283970"), "changeAdmin(address)"),
    (hex!("7eff275e"), "changeProxyAdmin(address,address)"),
    (hex!("c42069ec"), "setPendingOwner(address)"),
    (hex!("13af4035"), "setOwner(address)"),
];

/// Role functions whose role argument decides: `DEFAULT_ADMIN_ROLE` (zero) controls every role.
const ROLE_CHANGES: &[([u8; 4], &str)] = &[
    (hex!("2f2ff15d"), "grantRole(bytes32,address)"),
    (hex!("d547741f"), "revokeRole(bytes32,address)"),
    (hex!("36568abe"), "renounceRole(bytes32,address)"),
];

/// Whether `data` hands over control of the contract it is sent to (by selector, and for role functions
/// by the role being `DEFAULT_ADMIN_ROLE`). Returns the signature when it does.
pub fn control_change(data: &[u8]) -> Option<&'static str> {
    let sel = data.get(..4)?;
    if let Some((_, sig)) = CONTROL_CHANGES.iter().find(|(s, _)| s == sel) {
        return Some(sig);
    }
    ROLE_CHANGES
        .iter()
        .find(|(s, _)| s == sel)
        .filter(|_| {
            data.get(4..36)
                .is_some_and(|role| role.iter().all(|b| *b == 0))
        })
        .map(|(_, sig)| *sig)
}

/// Whether the function `signature` (canonical, e.g. `transferOwnership(address)`) hands over control
/// whatever its arguments (role functions depend on the role: see [`is_role_change`]).
pub fn is_control_change(signature: &str) -> bool {
    CONTROL_CHANGES.iter().any(|(_, s)| *s == signature)
}

/// Whether `signature` grants, revokes or renounces a role.
pub fn is_role_change(signature: &str) -> bool {
    ROLE_CHANGES.iter().any(|(_, s)| *s == signature)
}

/// Argument names that usually decide who controls something (owners, admins, roles, modules, guards,
/// implementations): an `any` constraint on one of them deserves a loud warning.
pub fn names_control(arg: &str) -> bool {
    let a = arg.to_ascii_lowercase().replace('_', "");
    [
        "owner",
        "admin",
        "guardian",
        "governor",
        "governance",
        "controller",
        "operator",
        "manager",
        "pauser",
        "minter",
        "role",
        "module",
        "guard",
        "handler",
        "beacon",
        "implementation",
        "delegate",
        "signer",
        "authority",
        "account",
    ]
    .iter()
    .any(|w| a.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::keccak256;

    /// The written-out selectors are keccak256 of their signatures, and a lookup finds each.
    #[test]
    fn selectors_are_the_signatures_hashes() {
        for (sel, sig) in CONTROL_CHANGES.iter().chain(ROLE_CHANGES) {
            assert_eq!(&keccak256(sig.as_bytes())[..4], sel, "{sig}");
        }
        for (sel, sig) in CONTROL_CHANGES {
            assert_eq!(control_change(sel), Some(*sig));
        }
        let mut admin = vec![0u8; 68];
        for (sel, sig) in ROLE_CHANGES {
            admin[..4].copy_from_slice(sel);
            assert_eq!(control_change(&admin), Some(*sig));
            let mut other = admin.clone();
            other[35] = 1;
            assert_eq!(
                control_change(&other),
                None,
                "{sig} of a role other than the default admin role"
            );
        }
        assert_eq!(control_change(&hex!("8456cb59")), None, "pause()");
    }
}
