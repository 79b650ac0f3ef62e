//! The shapes an upgrade call takes on chain. A leaf module: the manifest names one (`upgrade_call`), the
//! decoder reads them from bytes, compose writes them.

use serde::Serialize;

/// The shapes an upgrade takes on chain (OpenZeppelin 4 and 5, Optimism's ProxyAdmin, beacons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UpgradeShape {
    /// `upgradeToAndCall(address,bytes)` on the proxy (UUPS; OZ 4 and 5).
    UpgradeToAndCall,
    /// `upgradeTo(address)` on the proxy (OZ 4 UUPS) or on a beacon.
    UpgradeTo,
    /// `ProxyAdmin.upgradeAndCall(address proxy,address implementation,bytes)` (OZ 4 and 5).
    UpgradeAndCall,
    /// `ProxyAdmin.upgrade(address proxy,address implementation)` (OZ 4, Optimism).
    Upgrade,
}

impl UpgradeShape {
    /// The function signature.
    pub fn signature(self) -> &'static str {
        match self {
            Self::UpgradeToAndCall => "upgradeToAndCall(address,bytes)",
            Self::UpgradeTo => "upgradeTo(address)",
            Self::UpgradeAndCall => "upgradeAndCall(address,address,bytes)",
            Self::Upgrade => "upgrade(address,address)",
        }
    }

    /// The 4-byte selector of [`Self::signature`], hashed once per process (every call of every batch
    /// is tested against the four shapes).
    pub fn selector(self) -> [u8; 4] {
        static SELECTORS: std::sync::LazyLock<[[u8; 4]; 4]> = std::sync::LazyLock::new(|| {
            UpgradeShape::ALL.map(|s| {
                let h = alloy::primitives::keccak256(s.signature().as_bytes());
                [h[0], h[1], h[2], h[3]]
            })
        });
        SELECTORS[self as usize]
    }

    /// As written in a manifest (`upgrade_call = "…"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::UpgradeToAndCall => "upgradeToAndCall",
            Self::UpgradeTo => "upgradeTo",
            Self::UpgradeAndCall => "upgradeAndCall",
            Self::Upgrade => "upgrade",
        }
    }

    /// Whether it carries init data.
    pub fn has_data(self) -> bool {
        matches!(self, Self::UpgradeToAndCall | Self::UpgradeAndCall)
    }

    /// All shapes.
    pub const ALL: [UpgradeShape; 4] = [
        Self::UpgradeToAndCall,
        Self::UpgradeTo,
        Self::UpgradeAndCall,
        Self::Upgrade,
    ];
}

#[cfg(test)]
mod selector_tests {
    use super::UpgradeShape;

    /// The selectors as OpenZeppelin's and Optimism's contracts publish them (their ABIs' method
    /// identifiers), not as this code computes them.
    #[test]
    fn selectors_are_the_published_ones() {
        let hex = |s: UpgradeShape| alloy::hex::encode(s.selector());
        assert_eq!(hex(UpgradeShape::UpgradeToAndCall), "4f1ef286");
        assert_eq!(hex(UpgradeShape::UpgradeTo), "3659cfe6");
        assert_eq!(hex(UpgradeShape::UpgradeAndCall), "9623609d");
        assert_eq!(hex(UpgradeShape::Upgrade), "99a88ec4");
    }
}
