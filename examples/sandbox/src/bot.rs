//! A bot player: wanders between random cells (of its home region, if it has one) and every few
//! seconds places a block near itself or takes one of its own away. Deterministic from its peer id (its own xorshift generator).

use bevy::prelude::*;

use crate::game::{Game, TakeAction};
use crate::world::{Action, cells_x, cells_y, region_cells};

/// Cells per second a bot walks.
const SPEED: f32 = 3.0;
/// Own blocks a bot keeps before it starts taking them away.
const KEEP_BLOCKS: usize = 6;

/// A bot's private state.
#[derive(Default)]
pub(crate) struct BotMind {
    rng: u64,
    target: Option<Vec2>,
    next_act_s: f32,
}

impl BotMind {
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32
    }
}

pub(crate) fn play(
    time: Res<Time>,
    mut game: ResMut<Game>,
    session: Res<crate::session::Play>,
    mut mind: Local<BotMind>,
    mut act: MessageWriter<TakeAction>,
) {
    if mind.rng == 0 {
        let seed = u64::from_le_bytes(game.me.0[..8].try_into().unwrap_or([7; 8]));
        mind.rng = seed | 1;
        mind.next_act_s = 2.0 + mind.below(3) as f32;
    }
    let target = match mind.target {
        Some(t) if t.distance(game.pos) > 0.1 => t,
        _ => {
            let (x0, y0, x1, y1) = game.home.map_or((0, 0, cells_x(), cells_y()), region_cells);
            let t = Vec2::new(
                (x0 + mind.below(x1 - x0)) as f32 + 0.5,
                (y0 + mind.below(y1 - y0)) as f32 + 0.5,
            );
            mind.target = Some(t);
            t
        }
    };
    let dt = time.delta_secs().min(0.25);
    let step = (target - game.pos).clamp_length_max(SPEED * dt);
    game.pos += step;
    mind.next_act_s -= dt;
    if mind.next_act_s > 0.0 || !session.running() {
        return;
    }
    mind.next_act_s = 2.0 + mind.below(3) as f32;
    let Ok(world) = game.world.as_ref() else {
        return;
    };
    let mine: Vec<(u32, u32)> = world
        .blocks()
        .iter()
        .filter(|(_, b)| b.placer == game.me.0)
        .map(|(c, _)| *c)
        .collect();
    if mine.len() >= KEEP_BLOCKS {
        let (x, y) = mine[mind.below(mine.len() as u32) as usize];
        act.write(TakeAction(Action::Remove { x, y }));
        return;
    }
    // Near itself, inside the region it plays (other regions' cells are other sessions').
    let (x0, y0, x1, y1) = region_cells(game.region);
    let (cx, cy) = game.cell();
    let x = (cx + mind.below(5)).saturating_sub(2).clamp(x0, x1 - 1);
    let y = (cy + mind.below(5)).saturating_sub(2).clamp(y0, y1 - 1);
    if !world.blocks().contains_key(&(x, y)) {
        let kind = 1 + mind.below(3) as u8;
        act.write(TakeAction(Action::Place { x, y, kind }));
    }
}
