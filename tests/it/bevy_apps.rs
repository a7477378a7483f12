//! Three headless Bevy apps with `MeshworkPlugin` over the in-memory transport see each other
//! join and exchange messages.

use std::time::Duration;

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use meshwork::bevy::prelude::*;
use meshwork::transport::memory::MemoryNetwork;

#[derive(Resource, Default)]
struct Seen {
    joined: Vec<PeerId>,
    received: Vec<(PeerId, Vec<u8>)>,
}

fn record(
    mut seen: ResMut<Seen>,
    mut joined: MessageReader<PeerJoined>,
    mut received: MessageReader<MessageReceived>,
) {
    seen.joined.extend(joined.read().map(|j| j.peer));
    seen.received
        .extend(received.read().map(|m| (m.origin, m.payload.clone())));
}

fn app(net: &MemoryNetwork, seed: u8) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(
            50,
        )))
        .add_plugins(MeshworkPlugin::new(
            MeshworkConfig::memory(net.clone()).with_seed([seed; 32]),
        ))
        .init_resource::<Seen>()
        .add_systems(Update, record);
    app
}

#[test]
fn three_apps_join_and_exchange_messages() {
    let net = MemoryNetwork::new();
    let mut apps: Vec<App> = (1..=3).map(|s| app(&net, s)).collect();
    let ids: Vec<PeerId> = apps
        .iter()
        .map(|a| a.world().resource::<LocalPeer>().peer_id)
        .collect();
    for _ in 0..40 {
        apps.iter_mut().for_each(|a| a.update());
    }
    for (i, a) in apps.iter().enumerate() {
        let seen = a.world().resource::<Seen>();
        for (j, id) in ids.iter().enumerate() {
            if i != j {
                assert!(seen.joined.contains(id), "app {i} did not see app {j} join");
            }
        }
        assert_eq!(a.world().resource::<Peers>().linked.len(), 2);
    }
    // Every app sends to every other app, by exact id.
    for (i, a) in apps.iter_mut().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if i != j {
                a.world_mut().write_message(SendMessage {
                    target: *id,
                    exact: true,
                    payload: vec![i as u8, j as u8],
                });
            }
        }
    }
    for _ in 0..20 {
        apps.iter_mut().for_each(|a| a.update());
    }
    for (j, a) in apps.iter().enumerate() {
        let seen = a.world().resource::<Seen>();
        for (i, id) in ids.iter().enumerate() {
            if i != j {
                assert!(
                    seen.received.contains(&(*id, vec![i as u8, j as u8])),
                    "app {j} missed the message from app {i}: {:?}",
                    seen.received
                );
            }
        }
    }
}

#[test]
fn a_leaving_app_is_reported() {
    let net = MemoryNetwork::new();
    let mut a = app(&net, 1);
    let mut b = app(&net, 2);
    for _ in 0..20 {
        a.update();
        b.update();
    }
    assert_eq!(a.world().resource::<Peers>().linked.len(), 1);
    drop(b);
    for _ in 0..5 {
        a.update();
    }
    assert!(a.world().resource::<Peers>().linked.is_empty());
}
