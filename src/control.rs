//! Calls that hand over control of a contract: ownership, the proxy admin, the default admin role. They
//! are critical whatever the manifest says (the policy), and a manifest that lets such an argument be
//! anything is warned about (the Radiant payload, Oct 2024, was a `transferOwnership` that a permissive
//! rule allowed). Keyed on selectors, never on names an ABI gives.

use alloy::primitives::keccak256;

/// Functions that hand over control of a contract: ownership, the proxy admin, and the default admin
/// role. Critical whatever ABI decodes them (the Radiant payload, Oct 2024, was a `transferOwnership`).
const CONTROL_CHANGES: &[&str] = &[
    "transferOwnership(address)",
    "renounceOwnership()",
    "changeAdmin(address)",
    "changeProxyAdmin(address,address)",
    "setPendingOwner(address)",
    "setOwner(address)",
];

/// Role functions whose role argument decides: `DEFAULT_ADMIN_ROLE` (zero) controls every role.
const ROLE_CHANGES: &[&str] = &[
    "grantRole(bytes32,address)",
    "revokeRole(bytes32,address)",
    "renounceRole(bytes32,address)",
];

/// Whether `data` hands over control of the contract it is sent to (by selector, and for role functions
/// by the role being `DEFAULT_ADMIN_ROLE`). Returns the signature when it does.
pub fn control_change(data: &[u8]) -> Option<&'static str> {
    let sel = data.get(..4)?;
    if let Some(sig) = CONTROL_CHANGES
        .iter()
        .find(|s| &keccak256(s.as_bytes())[..4] == sel)
    {
        return Some(sig);
    }
    ROLE_CHANGES
        .iter()
        .find(|s| &keccak256(s.as_bytes())[..4] == sel)
        .filter(|_| {
            data.get(4..36)
                .is_some_and(|role| role.iter().all(|b| *b == 0))
        })
        .copied()
}

/// Whether the function `signature` (canonical, e.g. `transferOwnership(address)`) hands over control
/// whatever its arguments (role functions depend on the role: see [`is_role_change`]).
pub fn is_control_change(signature: &str) -> bool {
    CONTROL_CHANGES.contains(&signature)
}

/// Whether `signature` grants, revokes or renounces a role.
pub fn is_role_change(signature: &str) -> bool {
    ROLE_CHANGES.contains(&signature)
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
