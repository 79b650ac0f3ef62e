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
