//! Shadow simulation: what a bundle's transaction will do to live state, before anyone signs. The
//! transaction runs in-process in `revm` against a node's state at a pinned block ([`state::RpcSource`]),
//! or fully offline against a snapshot whose every value is proven against a block header
//! ([`snapshot`]).

pub mod engine;
pub mod report;
pub mod snapshot;
pub mod state;

/// Why a simulation could not run (a revert is a result, not an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The node failed or lacks something.
    #[error("the node cannot serve the simulation: {0}")]
    Node(String),
    /// The snapshot is malformed, altered, or for something else.
    #[error("the snapshot is refused: {0}")]
    Snapshot(String),
    /// Execution read state the snapshot does not prove.
    #[error("the snapshot lacks state the execution reads: {0} (take a new snapshot online)")]
    MissingState(String),
    /// The EVM failed (not a revert).
    #[error("the simulation failed: {0}")]
    Evm(String),
    /// The bundle cannot be simulated.
    #[error("{0}")]
    Input(String),
}
