//! A sandbox player's GGRS input ([`Pad`]) and the rollback simulation it drives ([`Sim`]),
//! without Bevy. Every session member decodes every other member's input each frame, so nothing
//! here panics on what a peer sends (fuzz target `sandbox_msg` drives these decoders too).

use crate::world::{Action, cells_x, cells_y};

/// One GGRS input: bytes 0..10 the encoded action, zero-padded (all zero: no action); bytes
/// 10..14 the avatar's position in 1/100 cell, plus one (u16 little-endian x, then y; 0: not
/// given, and the avatar stays).
pub type Pad = [u8; 14];
/// Bytes of a [`Pad`] holding the action.
const ACTION_BYTES: usize = 10;
/// The fastest a session avatar moves: 1/100 cells per frame on each axis (8 cells a second at
/// the session's 20 frames a second; a player walks 6).
pub const STEP_MAX_CENTI: i32 = 40;

/// The session's avatars as GGRS simulates them (its rollback state): the frame, and each
/// player's avatar in roster order, in 1/100 cell (none until its player says where it is).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sim {
    /// Frames simulated.
    pub frame: i32,
    /// Avatars, by GGRS handle.
    pub avatars: Vec<Option<(i32, i32)>>,
}

impl Sim {
    /// One frame: each avatar moves toward the position its player's input gives, by at most
    /// [`STEP_MAX_CENTI`] on each axis (an avatar not placed yet appears there).
    pub fn advance(&mut self, inputs: &[Pad]) {
        self.avatars.resize(inputs.len(), None);
        for (avatar, input) in self.avatars.iter_mut().zip(inputs) {
            if let Some((tx, ty)) = unpad_position(input) {
                let step =
                    |from: i32, to: i32| from + (to - from).clamp(-STEP_MAX_CENTI, STEP_MAX_CENTI);
                *avatar = Some(match *avatar {
                    Some((x, y)) => (step(x, tx), step(y, ty)),
                    None => (tx, ty),
                });
            }
        }
        self.frame += 1;
    }

    /// Where avatar `handle` is, in cells (x, y).
    pub fn position(&self, handle: usize) -> Option<(f32, f32)> {
        self.avatars
            .get(handle)
            .copied()
            .flatten()
            .map(|(x, y)| (x as f32 / 100.0, y as f32 / 100.0))
    }
}

/// A GGRS input: `action` (if any) and the avatar at (`x`, `y`) (in cells, clamped to the
/// world).
pub fn pad(action: Option<&Action>, x: f32, y: f32) -> Pad {
    let mut p = [0; 14];
    if let Some(action) = action {
        let bytes = action.encode();
        let n = bytes.len().min(ACTION_BYTES);
        p[..n].copy_from_slice(&bytes[..n]);
    }
    let centi = |v: f32, cells: u32| {
        let max = cells * 100;
        // In range: at most 4,000 + 1 for the demo's world.
        u16::try_from(((v.max(0.0) * 100.0).round() as u32).min(max) + 1).unwrap_or(0)
    };
    p[10..12].copy_from_slice(&centi(x, cells_x()).to_le_bytes());
    p[12..14].copy_from_slice(&centi(y, cells_y()).to_le_bytes());
    p
}

/// The position a GGRS input gives, in 1/100 cell (none if not given or outside the world).
pub fn unpad_position(p: &Pad) -> Option<(i32, i32)> {
    let x = i32::from(u16::from_le_bytes([p[10], p[11]]));
    let y = i32::from(u16::from_le_bytes([p[12], p[13]]));
    let inside = |v: i32, cells: u32| v >= 1 && v <= i32::try_from(cells * 100).unwrap_or(0) + 1;
    (inside(x, cells_x()) && inside(y, cells_y())).then_some((x - 1, y - 1))
}

/// The action a GGRS input carries, if any (anything malformed is none).
pub fn unpad(p: &Pad) -> Option<Action> {
    let u = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    let action = match p[0] {
        0x01 if p[9] != 0 => Action::Place {
            x: u(1),
            y: u(5),
            kind: p[9],
        },
        0x02 => Action::Remove { x: u(1), y: u(5) },
        _ => return None,
    };
    let (x, y) = action.cell();
    (x < cells_x() && y < cells_y()).then_some(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_round_trip_and_refuse_garbage() {
        let here = (3.25, 7.5);
        for a in [
            Action::Place {
                x: 3,
                y: 29,
                kind: 2,
            },
            Action::Remove { x: 39, y: 0 },
        ] {
            assert_eq!(unpad(&pad(Some(&a), here.0, here.1)), Some(a));
            assert_eq!(
                unpad_position(&pad(Some(&a), here.0, here.1)),
                Some((325, 750))
            );
        }
        assert_eq!(unpad(&pad(None, here.0, here.1)), None);
        assert_eq!(unpad(&Pad::default()), None);
        assert_eq!(unpad_position(&Pad::default()), None, "no position given");
        let with = |head: &[u8]| {
            let mut p = Pad::default();
            p[..head.len()].copy_from_slice(head);
            p
        };
        assert_eq!(
            unpad(&with(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
            None,
            "kind 0"
        );
        assert_eq!(unpad(&with(&[0x02, 0xff, 0xff])), None, "outside");
        assert_eq!(unpad(&with(&[0x07; 10])), None);
        // Positions clamp to the world when sent and are refused outside it when received.
        let far = pad(None, 1e6, -5.0);
        assert_eq!(
            unpad_position(&far),
            Some((i32::try_from(cells_x() * 100).unwrap_or(0), 0))
        );
        assert_eq!(
            unpad_position(&with(
                &[0; 10].into_iter().chain([0xff; 4]).collect::<Vec<u8>>()
            )),
            None
        );
    }

    #[test]
    fn session_avatars_walk_toward_their_inputs_at_bounded_speed() {
        let mut sim = Sim::default();
        let at = |x: f32, y: f32| pad(None, x, y);
        sim.advance(&[at(1.0, 1.0), Pad::default()]);
        assert_eq!(
            sim.avatars,
            vec![Some((100, 100)), None],
            "appears; stays unknown"
        );
        // A jump of 10 cells is walked at STEP_MAX_CENTI per frame on each axis.
        for _ in 0..3 {
            sim.advance(&[at(11.0, 1.2), Pad::default()]);
        }
        assert_eq!(sim.avatars[0], Some((100 + 3 * STEP_MAX_CENTI, 120)));
        // No position (or a disconnected player): the avatar stays.
        sim.advance(&[Pad::default(), at(2.0, 2.0)]);
        assert_eq!(sim.avatars[0], Some((100 + 3 * STEP_MAX_CENTI, 120)));
        assert_eq!(sim.position(1), Some((2.0, 2.0)));
        assert_eq!(sim.frame, 5);
        // The same inputs give the same state (GGRS re-simulates after a rollback).
        let mut again = Sim::default();
        for inputs in [
            [at(1.0, 1.0), Pad::default()],
            [at(11.0, 1.2), Pad::default()],
            [at(11.0, 1.2), Pad::default()],
            [at(11.0, 1.2), Pad::default()],
            [Pad::default(), at(2.0, 2.0)],
        ] {
            again.advance(&inputs);
        }
        assert_eq!(again, sim);
    }
}
