//! [`RefereeMsg`]: what players, referees and finalisers send each other.

use serde::{Deserialize, Serialize};

use super::{
    Attestation, Checkpoint, Claim, FinalityCertificate, InputLog, REFEREES_PER_CHECKPOINT,
    RefereeError, VerdictShare,
};
use crate::proto::wire;

/// A referee protocol message (bincode body inside a wire frame; decoding applies the wire
/// byte limit, the log's and the roster's bounds, and rejects trailing bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefereeMsg {
    /// Player → selected referee: re-execute and attest.
    Request {
        /// The checkpoint.
        checkpoint: Checkpoint,
        /// Which referee set is asked.
        attempt: u8,
        /// Its inputs.
        log: InputLog,
    },
    /// Player → players and observers.
    Claim(Claim),
    /// Referee → the session's players.
    Attestation(Attestation),
    /// Finaliser → the panel: judge this contradicting claim.
    Judge {
        /// The checkpoint.
        checkpoint: Checkpoint,
        /// Its inputs.
        log: InputLog,
        /// The claim.
        claim: Claim,
    },
    /// Panel referee → finaliser.
    Share(VerdictShare),
    /// Finaliser → anyone: the checkpoint is final.
    Finalised(FinalityCertificate),
}

impl RefereeMsg {
    /// Decodes a body and checks its shape. Never panics.
    pub fn decode(body: &[u8]) -> Result<Self, RefereeError> {
        let msg: Self = wire::decode(body)?;
        match &msg {
            Self::Request { checkpoint, .. } | Self::Judge { checkpoint, .. } => {
                checkpoint.check_shape()?;
            }
            Self::Finalised(cert) if cert.attestations.len() > REFEREES_PER_CHECKPOINT => {
                return Err(RefereeError::Malformed("more attestations than referees"));
            }
            _ => {}
        }
        Ok(msg)
    }

    /// Encodes a body.
    pub fn encode(&self) -> Result<Vec<u8>, RefereeError> {
        Ok(wire::encode_body(self)?)
    }
}
