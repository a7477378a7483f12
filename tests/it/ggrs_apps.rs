//! Three headless Bevy apps with `MeshworkPlugin` over the in-memory transport run one GGRS P2P
//! session over the mesh's datagrams (`MeshworkGgrs`): every frame confirmed by all three was
//! simulated with the same inputs everywhere, each input from the player owning its handle.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use meshwork::bevy::MeshworkGgrs;
use meshwork::bevy::prelude::*;
use meshwork::transport::ggrs::ggrs::{
    self, Config, GgrsRequest, InputStatus, P2PSession, PlayerType, SessionBuilder,
};
use meshwork::transport::memory::MemoryNetwork;

struct Cfg;
impl Config for Cfg {
    type Input = u8;
    type InputPredictor = ggrs::PredictRepeatLast;
    type State = u64;
    type Address = PeerId;
}

const PLAYERS: usize = 3;

/// The app's session and what it simulated.
#[derive(Resource, Default)]
struct Rollback {
    session: Option<P2PSession<Cfg>>,
    handle: usize,
    state: u64,
    frame: i32,
    /// Inputs of every frame simulated with all inputs confirmed.
    confirmed: BTreeMap<i32, Vec<u8>>,
}

/// Starts the session once linked to every other player (roster = all peers, by id), then
/// advances one frame per update.
fn play(
    local: Res<LocalPeer>,
    peers: Res<Peers>,
    ggrs_end: Res<MeshworkGgrs>,
    mut rb: ResMut<Rollback>,
) {
    let rb = &mut *rb;
    if rb.session.is_none() {
        if peers.linked.len() < PLAYERS - 1 {
            return;
        }
        let mut roster: Vec<PeerId> = peers.linked.keys().copied().collect();
        roster.push(local.peer_id);
        roster.sort();
        let mut b = SessionBuilder::<Cfg>::new()
            .with_num_players(PLAYERS)
            .expect("players");
        for (handle, p) in roster.iter().enumerate() {
            let kind = if *p == local.peer_id {
                rb.handle = handle;
                PlayerType::Local
            } else {
                PlayerType::Remote(*p)
            };
            b = b.add_player(kind, handle).expect("player");
        }
        rb.session = Some(b.start_p2p_session(ggrs_end.socket()).expect("starts"));
    }
    let Some(s) = rb.session.as_mut() else {
        return;
    };
    s.poll_remote_clients();
    if s.current_state() != ggrs::SessionState::Running {
        return;
    }
    let input = (s.current_frame() % 7) as u8 + 10 * (rb.handle as u8 + 1);
    s.add_local_input(rb.handle, input).expect("local player");
    let requests = match s.advance_frame() {
        Ok(r) => r,
        Err(ggrs::GgrsError::PredictionThreshold) => return,
        Err(e) => panic!("{e}"),
    };
    for r in requests {
        match r {
            GgrsRequest::SaveGameState { cell, frame } => cell.save(frame, Some(rb.state), None),
            GgrsRequest::LoadGameState { cell, frame } => {
                rb.state = cell.load().expect("saved before");
                rb.frame = frame;
            }
            GgrsRequest::AdvanceFrame { inputs } => {
                let values: Vec<u8> = inputs.iter().map(|(v, _)| *v).collect();
                for v in &values {
                    rb.state = rb.state.wrapping_mul(31).wrapping_add(u64::from(*v));
                }
                if inputs.iter().all(|(_, st)| *st == InputStatus::Confirmed) {
                    rb.confirmed.insert(rb.frame, values);
                }
                rb.frame += 1;
            }
        }
    }
}

fn app(net: &MemoryNetwork, seed: u8) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(MeshworkPlugin::new(
            MeshworkConfig::memory(net.clone()).with_seed([seed; 32]),
        ))
        .init_resource::<Rollback>()
        .add_systems(Update, play);
    app
}

#[test]
fn three_apps_confirm_the_same_inputs_over_the_mesh() {
    let net = MemoryNetwork::new();
    let mut apps: Vec<App> = (1..=PLAYERS as u8).map(|s| app(&net, s)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let enough = |apps: &[App]| {
        apps.iter()
            .all(|a| a.world().resource::<Rollback>().confirmed.len() >= 60)
    };
    while !enough(&apps) {
        assert!(
            Instant::now() < deadline,
            "60 confirmed frames not reached in 60 s"
        );
        apps.iter_mut().for_each(|a| a.update());
        std::thread::sleep(Duration::from_millis(2));
    }
    let confirmed: Vec<&BTreeMap<i32, Vec<u8>>> = apps
        .iter()
        .map(|a| &a.world().resource::<Rollback>().confirmed)
        .collect();
    let mut common = 0;
    for (frame, inputs) in confirmed[0] {
        if confirmed[1..].iter().all(|c| c.contains_key(frame)) {
            for other in &confirmed[1..] {
                assert_eq!(other[frame], *inputs, "frame {frame}");
            }
            for (handle, v) in inputs.iter().enumerate() {
                assert_eq!(
                    usize::from(*v / 10),
                    handle + 1,
                    "frame {frame}: input of handle {handle}"
                );
            }
            common += 1;
        }
    }
    assert!(common >= 50, "only {common} frames confirmed by all three");
    for a in &apps {
        let stats = a.world().resource::<MeshworkGgrs>().0.stats();
        assert!(stats.sent > 0 && stats.received > 0, "{stats:?}");
        assert_eq!(stats.undecodable, 0, "{stats:?}");
    }
}
