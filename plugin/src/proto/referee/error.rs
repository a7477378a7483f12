//! [`RefereeError`]: every refusal at the referee boundary.

use crate::proto::contract::{CodeHash, StateRoot};
use crate::proto::identity::PublicKey;
use crate::proto::wire::WireError;

/// Why a checkpoint, log, claim, attestation or verdict share was refused. Outcomes (a finalised
/// root, a cheater) are events, not errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefereeError {
    /// Bytes that do not decode, or decode with trailing bytes.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// Wire decoding failed.
    #[error("wire: {0}")]
    Wire(String),
    /// A roster that is empty, too large, unsorted or has duplicates.
    #[error("bad roster: {0}")]
    BadRoster(&'static str),
    /// The checkpoint's roster is not the session's.
    #[error("the checkpoint's roster is not the session's")]
    WrongRoster,
    /// The input log breaks a bound (bytes, frames, actions) or does not match the checkpoint.
    #[error("bad input log: {0}")]
    BadLog(&'static str),
    /// The log's hash is not the checkpoint's `input_log_hash`.
    #[error("the input log does not hash to the checkpoint's input_log_hash")]
    LogHashMismatch,
    /// Code consensus: the checkpoint (or the state) runs other code than the agreed one.
    #[error("code hash mismatch: expected {expected:?}, got {actual:?}")]
    CodeHashMismatch {
        /// The code this peer agreed to run.
        expected: CodeHash,
        /// The code named by the checkpoint or found in the state.
        actual: CodeHash,
    },
    /// The state offered for re-execution is not at the checkpoint's prior root.
    #[error("state at {actual:?}, checkpoint starts from {expected:?}")]
    PriorRootMismatch {
        /// The checkpoint's prior root.
        expected: StateRoot,
        /// The root of the state at hand.
        actual: StateRoot,
    },
    /// The world contract named by the checkpoint is not in the state.
    #[error("the world contract is not in the state")]
    UnknownWorld,
    /// A signature does not verify.
    #[error("bad signature by {0:?}")]
    BadSignature(PublicKey),
    /// A claim signed by a key that is not in the roster.
    #[error("{0:?} is not a player of this session")]
    NotAPlayer(PublicKey),
    /// A statement about another checkpoint than the one at hand.
    #[error("statement about another checkpoint")]
    WrongCheckpoint,
    /// An attestation or share by a key that was not selected for this checkpoint and attempt.
    #[error("{0:?} is not a selected referee of this checkpoint")]
    NotSelected(PublicKey),
    /// A referee asked to judge a session it plays in.
    #[error("{0:?} plays in the session it would referee")]
    RefereeInSession(PublicKey),
    /// A second claim, attestation or share from the same signer.
    #[error("duplicate statement from {0:?}")]
    Duplicate(PublicKey),
    /// A referee attempt beyond the panel's capacity.
    #[error("attempt {0} is beyond the last referee set")]
    NoSuchAttempt(u8),
    /// Too few eligible referees to form a panel.
    #[error("only {0} eligible referees, a panel needs {1}")]
    PoolTooSmall(usize, usize),
    /// A verdict share was asked for a claim that agrees with the referee's root.
    #[error("the claim agrees with this referee's root")]
    ClaimAgrees,
    /// Re-execution failed in the host (not a contract error: those are receipts).
    #[error("execution: {0}")]
    Execution(String),
}

impl From<WireError> for RefereeError {
    fn from(e: WireError) -> Self {
        Self::Wire(e.to_string())
    }
}
