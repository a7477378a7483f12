//! The smallest Meshwork app: three headless Bevy apps on an in-memory network find each other,
//! then each greets the peer closest to a key and prints what arrives.
//!
//! Run: `cargo run -p meshwork --example minimal`

use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use meshwork::bevy::prelude::*;
use meshwork::transport::memory::MemoryNetwork;

fn main() {
    let net = MemoryNetwork::new();
    let mut apps: Vec<App> = (0..3u8)
        .map(|i| {
            let mut app = App::new();
            app.add_plugins(
                MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(10))),
            )
            .add_plugins(MeshworkPlugin::new(
                MeshworkConfig::memory(net.clone()).with_seed([i + 1; 32]),
            ))
            .add_systems(Update, (greet, report));
            app
        })
        .collect();
    // Drive the three apps in lock step from this thread (each would normally be its own process).
    for _ in 0..300 {
        for app in &mut apps {
            app.update();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn greet(
    local: Res<LocalPeer>,
    peers: Res<Peers>,
    mut sent: Local<bool>,
    mut send: MessageWriter<SendMessage>,
) {
    if !*sent && peers.linked.len() >= 2 {
        *sent = true;
        for target in peers.linked.keys() {
            send.write(SendMessage {
                target: *target,
                exact: true,
                payload: format!("hello from {}", local.peer_id.short()).into_bytes(),
            });
        }
    }
}

fn report(
    local: Res<LocalPeer>,
    mut joined: MessageReader<PeerJoined>,
    mut received: MessageReader<MessageReceived>,
) {
    for j in joined.read() {
        println!("{}: linked to {}", local.peer_id.short(), j.peer.short());
    }
    for m in received.read() {
        println!(
            "{}: got {:?} from {} in {} hop(s)",
            local.peer_id.short(),
            String::from_utf8_lossy(&m.payload),
            m.origin.short(),
            m.hops
        );
    }
}
