//! What sandbox players say to each other over the mesh: presence and actions published on the
//! world topic, and the action history a newcomer asks for. Bincode through
//! `meshwork::proto::wire` (bounded decode); everything decoded is checked against its bounds
//! before use, and nothing here panics on what a peer sends.

use meshwork::proto::identity::PeerId;
use meshwork::proto::wire;
use serde::{Deserialize, Serialize};

use crate::world::{Action, cells_x, cells_y};

/// The overlay topic every sandbox player subscribes to.
pub const WORLD_TOPIC: &[u8] = b"meshwork-sandbox/world/v1";
/// Links a presence may list (the overlay's default cap is 24).
pub const LINKS_MAX: usize = 32;
/// Actions a history may carry.
pub const HISTORY_MAX: usize = 4_096;

/// An action as it travels: who did it, their sequence number, what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamped {
    /// The acting player.
    pub player: PeerId,
    /// Its per-player sequence number (deduplicates copies).
    pub seq: u64,
    /// The action.
    pub action: Action,
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
    },
    /// An action the sender took (published).
    Act(Stamped),
    /// A newcomer asks for the action history (published; answered by [`SandboxMsg::History`]).
    Hello,
    /// The actions applied so far, in order (sent to the newcomer only).
    History(Vec<Stamped>),
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
            Self::Act(s) => check_action(&s.action)?,
            Self::History(h) => {
                if h.len() > HISTORY_MAX {
                    return Err(NetError::Bounds("history too long"));
                }
                for s in h {
                    check_action(&s.action)?;
                }
            }
            Self::Hello => {}
        }
        Ok(msg)
    }
}

fn check_action(a: &Action) -> Result<(), NetError> {
    let (x, y) = a.cell();
    if x >= cells_x() || y >= cells_y() {
        return Err(NetError::Bounds("cell outside the world"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_bounds_hold() {
        let act = SandboxMsg::Act(Stamped {
            player: PeerId([3; 32]),
            seq: 7,
            action: Action::Place {
                x: 1,
                y: 2,
                kind: 3,
            },
        });
        assert_eq!(SandboxMsg::decode(&act.encode()).expect("valid"), act);
        let outside = SandboxMsg::Act(Stamped {
            player: PeerId([3; 32]),
            seq: 7,
            action: Action::Remove { x: cells_x(), y: 0 },
        });
        assert!(matches!(
            SandboxMsg::decode(&outside.encode()),
            Err(NetError::Bounds(_))
        ));
        let crowded = SandboxMsg::Presence {
            x_milli: 0,
            y_milli: 0,
            links: vec![PeerId([0; 32]); LINKS_MAX + 1],
            bot: false,
        };
        assert!(SandboxMsg::decode(&crowded.encode()).is_err());
        assert!(SandboxMsg::decode(&[0xff, 0xff, 0xff]).is_err());
        assert!(SandboxMsg::decode(&[]).is_err());
    }
}
