//! What sandbox players say to each other over the mesh: presence and referee announcements
//! published on the world topic, session proposals sent to each proposed member, and the bans
//! (referee verdicts) a member answers a proposal with when it names a player caught cheating. Bincode through
//! `meshwork::proto::wire` (bounded decode); everything decoded is checked against its bounds
//! before use, and nothing here panics on what a peer sends.

use meshwork::proto::contract::StateRoot;
use meshwork::proto::identity::{PeerId, PublicKey};
use meshwork::proto::ledger::{OutputProof, Verdict};
use meshwork::proto::referee::{CheckpointDigest, Member, ROSTER_MAX};
use meshwork::proto::session::{SNAPSHOT_CONTRACTS_MAX, Snapshot};
use meshwork::proto::wire;
use serde::{Deserialize, Serialize};

use crate::world::{REGIONS_X, REGIONS_Y, cells_x, cells_y};

/// The overlay topic every sandbox player subscribes to.
pub const WORLD_TOPIC: &[u8] = b"meshwork-sandbox/world/v1";
/// Links a presence may list (the overlay's default cap is 24).
pub const LINKS_MAX: usize = 32;
/// Referees a proposal may list.
pub const REFEREES_MAX: usize = 256;
/// Attesters a proposal may list (a checkpoint draws from at most `PANEL_MAX` anyway).
pub const ATTESTERS_MAX: usize = 64;
/// Bans a proposal or a [`SandboxMsg::Bans`] may carry.
pub const BANS_MAX: usize = 32;
/// Signatures a ban's verdict may carry (a verdict needs > 2/3 of a panel of at most
/// `REFEREES_PER_CHECKPOINT` × attempts referees).
pub const VERDICT_SIGNATURES_MAX: usize = 64;

/// A player the referees caught cheating, with their verdict as the evidence. A peer that
/// receives one checks it (`crate::session`) before it stops playing with that player.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// The cheater.
    pub player: PublicKey,
    /// The referees' verdict against its session bond.
    pub verdict: Verdict,
    /// The bond's proof, where bonds are ledger outputs (the verdict is checked against its
    /// terms); `None` with placeholder bonds.
    pub bond: Option<OutputProof>,
}

/// A session proposal: who plays, judged by whom, from which finalised state. Every member
/// that accepts derives the same session id from it (see `crate::session`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The players (keys and session bonds).
    pub members: Vec<Member>,
    /// The referee pool the panel is drawn from.
    pub referees: Vec<PublicKey>,
    /// Referees drawn per checkpoint (what the referees announced).
    pub per_checkpoint: u8,
    /// The region the session plays (its world instance; see `crate::session`).
    pub region: (u16, u16),
    /// Bonded players of other sessions the proposer heard lately: checkpoints draw their
    /// referees from `referees` and these together (`RefereePool::with_attesters`), verdicts
    /// stay with `referees`. At most [`ATTESTERS_MAX`].
    pub attesters: Vec<PublicKey>,
    /// Where bonds are ledger outputs: each attester's session bond proof, in attester order
    /// (empty with placeholder bonds). A member refuses a proposal with an attester whose bond
    /// does not check out: otherwise a proposer could fill the referee sets with keys of its own.
    pub attester_bonds: Vec<OutputProof>,
    /// The last finalised checkpoint (all zeros: the world's genesis).
    pub parent: CheckpointDigest,
    /// The frame the session starts at: the finalised height.
    pub first_frame: u64,
    /// The finalised world's root (before newcomers are onboarded).
    pub root: StateRoot,
    /// That world's state, for members that do not hold it.
    pub snapshot: Snapshot,
    /// Players the proposer knows were caught cheating (so a newcomer never proposes them).
    pub bans: Vec<Ban>,
    /// Where bonds are ledger outputs: each member's bond proof, in member order (empty with
    /// placeholder bonds).
    pub bonds: Vec<OutputProof>,
}

/// A sandbox message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxMsg {
    /// Where a player's avatar is (in 1/1000 cell), and the peers it is linked to (for the map).
    Presence {
        /// Column × 1000.
        x_milli: u32,
        /// Row × 1000.
        y_milli: u32,
        /// Linked peers.
        links: Vec<PeerId>,
        /// A bot player (drawn differently).
        bot: bool,
        /// Its public key (its peer id is the key's hash).
        key: PublicKey,
        /// The frame its last finalised checkpoint ends at (0: genesis).
        height: u64,
    },
    /// A referee is available (published by referee peers).
    Referee {
        /// Its public key.
        key: PublicKey,
        /// Referees its deployment draws per checkpoint (the pool's consensus parameter).
        per_checkpoint: u8,
    },
    /// A session proposal (sent to each proposed member).
    Propose(Box<Proposal>),
    /// The answer to a proposal that names players caught cheating: their verdicts.
    Bans(Vec<Ban>),
    /// A player's session bond (published on the world topic now and then): only a player
    /// whose bond checks out is proposed.
    Bond(Box<OutputProof>),
    /// A newcomer asks the faucet (sent to its peer id) for its grant, paid to `key`.
    Grant {
        /// Whom to pay (the sender's key: its peer id must be the sender's).
        key: PublicKey,
    },
}

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Not a sandbox message.
    #[error("undecodable: {0}")]
    Decode(#[from] wire::WireError),
    /// Decoded, but out of bounds.
    #[error("out of bounds: {0}")]
    Bounds(&'static str),
}

impl SandboxMsg {
    /// The bytes to publish or send.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_body(self).unwrap_or_default()
    }

    /// Decodes and checks bounds.
    pub fn decode(bytes: &[u8]) -> Result<Self, NetError> {
        let msg: Self = wire::decode(bytes)?;
        match &msg {
            Self::Propose(p) => {
                if p.members.is_empty() || p.members.len() > ROSTER_MAX {
                    return Err(NetError::Bounds("roster size"));
                }
                if p.referees.len() > REFEREES_MAX {
                    return Err(NetError::Bounds("too many referees"));
                }
                if p.attesters.len() > ATTESTERS_MAX {
                    return Err(NetError::Bounds("too many attesters"));
                }
                if !p.attester_bonds.is_empty() && p.attester_bonds.len() != p.attesters.len() {
                    return Err(NetError::Bounds("one bond per attester"));
                }
                if p.region.0 >= REGIONS_X || p.region.1 >= REGIONS_Y {
                    return Err(NetError::Bounds("region outside the world"));
                }
                if p.snapshot.contracts.len() > SNAPSHOT_CONTRACTS_MAX {
                    return Err(NetError::Bounds("too many contracts"));
                }
                check_bans(&p.bans)?;
                if !p.bonds.is_empty() && p.bonds.len() != p.members.len() {
                    return Err(NetError::Bounds("one bond per member"));
                }
            }
            Self::Bans(bans) => {
                if bans.is_empty() {
                    return Err(NetError::Bounds("no bans"));
                }
                check_bans(bans)?;
            }
            Self::Referee { .. } | Self::Bond(_) | Self::Grant { .. } => {}
            Self::Presence {
                x_milli,
                y_milli,
                links,
                ..
            } => {
                if *x_milli > cells_x() * 1000 || *y_milli > cells_y() * 1000 {
                    return Err(NetError::Bounds("position outside the world"));
                }
                if links.len() > LINKS_MAX {
                    return Err(NetError::Bounds("too many links"));
                }
            }
        }
        Ok(msg)
    }
}

fn check_bans(bans: &[Ban]) -> Result<(), NetError> {
    if bans.len() > BANS_MAX {
        return Err(NetError::Bounds("too many bans"));
    }
    if bans
        .iter()
        .any(|b| b.verdict.signatures.len() > VERDICT_SIGNATURES_MAX)
    {
        return Err(NetError::Bounds("too many verdict signatures"));
    }
    if bans.iter().any(|b| !b.verdict.beneficiaries.is_empty()) {
        return Err(NetError::Bounds("a session verdict names no beneficiaries"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_bounds_hold() {
        let referee = SandboxMsg::Referee {
            key: PublicKey([3; 32]),
            per_checkpoint: 4,
        };
        assert_eq!(
            SandboxMsg::decode(&referee.encode()).expect("valid"),
            referee
        );
        let outside = SandboxMsg::Presence {
            x_milli: cells_x() * 1000 + 1,
            y_milli: 0,
            links: Vec::new(),
            bot: false,
            key: PublicKey([0; 32]),
            height: 0,
        };
        assert!(matches!(
            SandboxMsg::decode(&outside.encode()),
            Err(NetError::Bounds(_))
        ));
        let empty = SandboxMsg::Propose(Box::new(Proposal {
            members: Vec::new(),
            referees: Vec::new(),
            per_checkpoint: 4,
            region: (0, 0),
            attesters: Vec::new(),
            attester_bonds: Vec::new(),
            parent: CheckpointDigest([0; 32]),
            first_frame: 0,
            root: StateRoot::default(),
            snapshot: Snapshot {
                contracts: Vec::new(),
            },
            bans: Vec::new(),
            bonds: Vec::new(),
        }));
        assert!(matches!(
            SandboxMsg::decode(&empty.encode()),
            Err(NetError::Bounds(_))
        ));
        let crowded = SandboxMsg::Presence {
            x_milli: 0,
            y_milli: 0,
            links: vec![PeerId([0; 32]); LINKS_MAX + 1],
            bot: false,
            key: PublicKey([0; 32]),
            height: 0,
        };
        assert!(SandboxMsg::decode(&crowded.encode()).is_err());
        let ban = Ban {
            player: PublicKey([5; 32]),
            verdict: Verdict {
                bond: meshwork::proto::ledger::OutputId([6; 32]),
                case: [7; 32],
                beneficiaries: Vec::new(),
                signatures: Vec::new(),
            },
            bond: None,
        };
        let bans = SandboxMsg::Bans(vec![ban.clone()]);
        assert_eq!(SandboxMsg::decode(&bans.encode()).expect("valid"), bans);
        assert!(SandboxMsg::decode(&SandboxMsg::Bans(Vec::new()).encode()).is_err());
        assert!(
            SandboxMsg::decode(&SandboxMsg::Bans(vec![ban.clone(); BANS_MAX + 1]).encode())
                .is_err()
        );
        let mut paying = ban;
        paying.verdict.beneficiaries.push(PublicKey([8; 32]));
        assert!(SandboxMsg::decode(&SandboxMsg::Bans(vec![paying]).encode()).is_err());
        assert!(SandboxMsg::decode(&[0xff, 0xff, 0xff]).is_err());
        assert!(SandboxMsg::decode(&[]).is_err());
    }
}
