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

#[derive(Resource, Default)]
struct Answers(Vec<FetchCompleted>);

fn answer_hello(
    mut incoming: MessageReader<FetchIncoming>,
    mut respond: MessageWriter<RespondFetch>,
) {
    for FetchIncoming(i) in incoming.read() {
        let mut body = b"hello, ".to_vec();
        body.extend_from_slice(&i.body);
        respond.write(RespondFetch {
            token: i.token,
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body,
        });
    }
}

fn collect(mut done: MessageReader<FetchCompleted>, mut answers: ResMut<Answers>) {
    answers.0.extend(done.read().cloned());
}

/// The Bevy fetch API end to end: app B serves a custom path with `FetchIncoming` →
/// `RespondFetch`; app A writes `StartFetch` and reads `FetchCompleted`.
#[test]
fn a_bevy_app_fetches_from_another_apps_custom_path() {
    use meshwork::bevy::MeshworkNode;
    use meshwork::proto::fetch::{Method, Request};
    let net = MemoryNetwork::new();
    let mut a = app(&net, 1);
    let mut b = app(&net, 2);
    a.init_resource::<Answers>().add_systems(Update, collect);
    b.add_systems(Update, answer_hello);
    b.world_mut()
        .non_send_mut::<MeshworkNode>()
        .node
        .fetch
        .as_mut()
        .expect("the plugin attaches a fetch core")
        .serve_path("hello");
    for _ in 0..20 {
        a.update();
        b.update();
    }
    let idb = b.world().resource::<LocalPeer>().peer_id;
    let url = format!("mesh://peer/{}/hello", hex::encode(idb.0));
    a.world_mut().write_message(StartFetch {
        tag: 42,
        request: Request::get(&url)
            .expect("url")
            .with_body(Method::Post, b"mesh".to_vec()),
    });
    let bad = "mesh://nowhere".to_string();
    let _ = Request::get(&bad).expect_err("a bad URL is an error before anything is sent");
    for _ in 0..20 {
        a.update();
        b.update();
    }
    let answers = &a.world().resource::<Answers>().0;
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].tag, 42);
    let r = answers[0].result.as_ref().expect("answered");
    assert_eq!(r.body, b"hello, mesh");
    assert_eq!(r.status, 200);
}
