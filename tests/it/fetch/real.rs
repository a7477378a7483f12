//! fetch() over real WebRTC links: 6 native peers on loopback joined through the embedded
//! signalling server; a contract call and a block come back with the right bytes; with the
//! responder killed mid-request, the requester gets the answer from another replica or a clear
//! timeout error. Prints fetch round-trip time next to a plain routed round trip.

use std::future::Future as _;
use std::time::{Duration, Instant};

use meshwork::proto::fetch::{Fetch, FetchConfig, FetchError, FetchEvent, Method, Request};
use meshwork::proto::identity::{Identity, PeerId};
use meshwork::proto::overlay::OverlayConfig;
use meshwork::sim::fetch::echo_contracts;
use meshwork::transport::NodeEvent;
use meshwork::transport::signalling::{SignallingConfig, SignallingServer};
use sha2::{Digest, Sha256};

use crate::real_links::{Mesh, bounded};

fn completed(
    mesh: &Mesh,
    at: usize,
    rid: meshwork::proto::fetch::RequestId,
) -> Option<Result<meshwork::proto::fetch::Response, FetchError>> {
    mesh.peers[at].events.iter().find_map(|e| match e {
        NodeEvent::Fetch(FetchEvent::Completed { id, result }) if *id == rid => {
            Some(result.clone())
        }
        _ => None,
    })
}

fn fetch_and_wait(
    mesh: &mut Mesh,
    at: usize,
    req: Request,
    limit: Duration,
) -> (
    Option<Result<meshwork::proto::fetch::Response, FetchError>>,
    Duration,
) {
    let now = mesh.now_ms();
    let t0 = Instant::now();
    let rid = mesh.peers[at].node.fetch(now, req).expect("starts");
    let mut out = None;
    mesh.run_until(limit, |m| {
        out = completed(m, at, rid);
        out.is_some()
    });
    (out, t0.elapsed())
}

#[test]
fn fetch_over_real_links_answers_and_survives_a_killed_responder() {
    bounded("fetch_real_links", || {
        const N: usize = 6;
        let cfg = OverlayConfig {
            handshake_timeout_ms: 4_000,
            ..OverlayConfig::default()
        };
        let server = SignallingServer::start(SignallingConfig {
            introductions: 3,
            ..SignallingConfig::default()
        })
        .expect("start signalling server");
        let url = server.room_url("fetch");
        let mut mesh = Mesh::new();
        let (host, ids) = echo_contracts(1);
        let contract = ids[0];
        let block = b"a block that outlives its writer".repeat(40);
        let hash: [u8; 32] = Sha256::digest(&block).into();
        for i in 0..N {
            let seed = 40 + u8::try_from(i).expect("small");
            let p = mesh.join(&url, seed, &cfg);
            let mut core = Fetch::new(
                Identity::from_seed([seed; 32]),
                FetchConfig {
                    attempt_ms: 1_000,
                    ..FetchConfig::default()
                },
                [seed; 32],
            );
            if i > 0 {
                core.serve_contract(contract, host.clone());
                core.store_block(block.clone());
            }
            mesh.peers[p].node.fetch = Some(core);
            mesh.run_for(Duration::from_millis(300));
        }
        assert!(
            mesh.run_until(Duration::from_secs(30), |m| m.connected()),
            "mesh connected"
        );
        mesh.run_for(Duration::from_secs(2));

        // A contract call.
        let req = Request::get(&format!("mesh://{}/echo", hex::encode(contract.0)))
            .expect("url")
            .with_body(Method::Post, b"over webrtc".to_vec());
        let (r, t_call) = fetch_and_wait(&mut mesh, 0, req, Duration::from_secs(15));
        let r = r.expect("answered in time").expect("an answer");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"over webrtc");

        // A block, through the async client: its future completes as the node is ticked.
        let get = Request::get(&format!("mesh://block/{}", hex::encode(hash))).expect("url");
        let client = mesh.peers[0].node.client();
        let t0 = Instant::now();
        let mut fut = std::pin::pin!(client.fetch(get.clone()));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut got = None;
        while got.is_none() && t0.elapsed() < Duration::from_secs(15) {
            mesh.tick();
            if let std::task::Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
                got = Some(r);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let t_block = t0.elapsed();
        assert_eq!(
            got.expect("answered in time").expect("an answer").body,
            block
        );

        // A plain routed round trip to the same key, for comparison.
        let key = PeerId(hash);
        let t0 = Instant::now();
        let now = mesh.now_ms();
        let me = mesh.peers[0].id();
        mesh.peers[0].node.send(now, key, false, b"ping".to_vec());
        let mut answered = false;
        mesh.run_until(Duration::from_secs(10), |m| {
            for p in 1..N {
                if m.peers[p]
                    .events
                    .iter()
                    .any(|e| matches!(e, NodeEvent::Message { payload, .. } if payload == b"ping"))
                {
                    return true;
                }
            }
            false
        });
        for p in 1..N {
            if mesh.peers[p]
                .events
                .iter()
                .any(|e| matches!(e, NodeEvent::Message { payload, .. } if payload == b"ping"))
            {
                let now = mesh.now_ms();
                mesh.peers[p].node.send(now, me, true, b"pong".to_vec());
                answered = true;
                break;
            }
        }
        assert!(answered);
        mesh.run_until(Duration::from_secs(10), |m| {
            m.peers[0]
                .events
                .iter()
                .any(|e| matches!(e, NodeEvent::Message { payload, .. } if payload == b"pong"))
        });
        let t_plain = t0.elapsed();
        println!(
            "real links: contract fetch {t_call:?}, block fetch {t_block:?}, plain routed round trip {t_plain:?}"
        );

        // Kill the block's closest holder mid-request.
        let now = mesh.now_ms();
        let rid = mesh.peers[0].node.fetch(now, get).expect("starts");
        mesh.tick();
        let victim = (1..N)
            .min_by_key(|&p| mesh.peers[p].id().distance(&key))
            .expect("holders");
        let dead = mesh.peers[victim].id();
        drop(mesh.peers.remove(victim));
        let mut out = None;
        mesh.run_until(Duration::from_secs(20), |m| {
            out = completed(m, 0, rid);
            out.is_some()
        });
        match out.expect("completed within its timeout") {
            Ok(r) => {
                assert_eq!(r.body, block, "the answer from another replica is right");
                assert_ne!(PeerId::from_public_key(&r.responder), dead);
                println!("killed responder: answered by another replica");
            }
            Err(e) => {
                assert!(
                    matches!(e, FetchError::Timeout { .. } | FetchError::Refused(_)),
                    "a clear error: {e}"
                );
                println!("killed responder: {e}");
            }
        }
        server.shutdown();
    });
}
