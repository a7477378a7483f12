//! GGRS rollback over the mesh (feature `ggrs`): a [`ggrs::NonBlockingSocket`] addressed by
//! [`PeerId`] whose messages travel as datagrams on the unreliable channel of our direct links
//! ([`Node::send_datagram`]; channel 1 of matchbox links, or the in-memory transport's datagrams).
//!
//! GGRS sessions want a `Send + Sync` socket they own, while the node is driven from one thread
//! (and is single-threaded in the browser). So [`ggrs_channel`] makes two ends over one shared
//! pair of bounded queues: the [`GgrsSocket`] given to a session (clone it for the next session
//! after a roster change), and the [`GgrsPort`] the node's owner pumps once per frame
//! ([`GgrsPort::pump`]; the Bevy plugin does it in its receive and send phases).
//!
//! A datagram is one GGRS `Message`, bincode through [`wire::encode_body`] / [`wire::decode`]
//! (size-limited, trailing bytes rejected); anything undecodable is dropped and counted.
//! Nothing is routed: a session member without a direct link gets nothing until one opens
//! (`Overlay::connect`), which GGRS treats as loss.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

pub use ggrs;

use super::{DATAGRAM_BYTES_MAX, Node, Transport};
use crate::proto::identity::PeerId;
use crate::proto::wire;

/// Messages each direction holds before the oldest is dropped (GGRS resends what matters).
pub const QUEUED_MAX: usize = 1_024;

#[derive(Debug, Default)]
struct Queues {
    outgoing: VecDeque<(PeerId, Vec<u8>)>,
    incoming: VecDeque<(PeerId, Vec<u8>)>,
    stats: GgrsStats,
}

/// Counters of a [`ggrs_channel`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GgrsStats {
    /// Messages handed to the node.
    pub sent: u64,
    /// Their bytes (datagram payloads; the link's own framing not counted).
    pub bytes_sent: u64,
    /// Messages that had no direct link to leave on (or were too large).
    pub unsent: u64,
    /// Messages handed to the session.
    pub received: u64,
    /// Datagrams that were not GGRS messages.
    pub undecodable: u64,
    /// Messages dropped because a queue was full.
    pub overflowed: u64,
}

fn lock(q: &Mutex<Queues>) -> MutexGuard<'_, Queues> {
    // A poisoned lock only means another thread panicked mid-push; the queues stay usable.
    q.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn push(queue: &mut VecDeque<(PeerId, Vec<u8>)>, stats: &mut GgrsStats, item: (PeerId, Vec<u8>)) {
    if queue.len() >= QUEUED_MAX {
        queue.pop_front();
        stats.overflowed += 1;
    }
    queue.push_back(item);
}

/// The session's end: give it to `ggrs::SessionBuilder::start_p2p_session`.
#[derive(Debug, Clone)]
pub struct GgrsSocket {
    queues: Arc<Mutex<Queues>>,
}

/// The node's end: call [`GgrsPort::pump`] with the node once per frame.
#[derive(Debug, Clone)]
pub struct GgrsPort {
    queues: Arc<Mutex<Queues>>,
}

/// A connected socket/port pair.
pub fn ggrs_channel() -> (GgrsSocket, GgrsPort) {
    let queues = Arc::new(Mutex::new(Queues::default()));
    (
        GgrsSocket {
            queues: queues.clone(),
        },
        GgrsPort { queues },
    )
}

/// Decodes one datagram as a GGRS message (what a peer sends: never panics).
pub fn decode_message(bytes: &[u8]) -> Result<ggrs::Message, wire::WireError> {
    if bytes.len() > DATAGRAM_BYTES_MAX {
        return Err(wire::WireError::MessageTooLarge(bytes.len()));
    }
    wire::decode(bytes)
}

impl ggrs::NonBlockingSocket<PeerId> for GgrsSocket {
    fn send_to(&mut self, msg: &ggrs::Message, addr: &PeerId) {
        let mut q = lock(&self.queues);
        match wire::encode_body(msg) {
            Ok(bytes) if bytes.len() <= DATAGRAM_BYTES_MAX => {
                let q = &mut *q;
                push(&mut q.outgoing, &mut q.stats, (*addr, bytes));
            }
            _ => q.stats.unsent += 1,
        }
    }

    fn receive_all_messages(&mut self) -> Vec<(PeerId, ggrs::Message)> {
        let mut q = lock(&self.queues);
        let incoming: Vec<(PeerId, Vec<u8>)> = q.incoming.drain(..).collect();
        let mut out = Vec::with_capacity(incoming.len());
        for (peer, bytes) in incoming {
            match decode_message(&bytes) {
                Ok(m) => out.push((peer, m)),
                Err(_) => q.stats.undecodable += 1,
            }
        }
        q.stats.received += out.len() as u64;
        out
    }
}

impl GgrsPort {
    /// Sends what the session queued and queues what arrived for it.
    pub fn pump<T: Transport>(&self, node: &mut Node<T>) {
        let mut arrived = Vec::new();
        node.poll_datagrams(&mut arrived);
        let outgoing: Vec<(PeerId, Vec<u8>)> = {
            let mut q = lock(&self.queues);
            let q = &mut *q;
            for item in arrived {
                push(&mut q.incoming, &mut q.stats, item);
            }
            q.outgoing.drain(..).collect()
        };
        let mut sent = 0;
        let mut bytes_sent = 0;
        let mut unsent = 0;
        for (peer, bytes) in outgoing {
            let len = bytes.len() as u64;
            if node.send_datagram(peer, bytes) {
                sent += 1;
                bytes_sent += len;
            } else {
                unsent += 1;
            }
        }
        let mut q = lock(&self.queues);
        q.stats.sent += sent;
        q.stats.bytes_sent += bytes_sent;
        q.stats.unsent += unsent;
    }

    /// Counters so far.
    pub fn stats(&self) -> GgrsStats {
        lock(&self.queues).stats.clone()
    }

    /// A socket end for a new session (sharing this port's queues).
    pub fn socket(&self) -> GgrsSocket {
        GgrsSocket {
            queues: self.queues.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory::MemoryNetwork;
    use ggrs::{Config, GgrsRequest, NonBlockingSocket, PlayerType, SessionBuilder};

    struct TestConfig;
    impl Config for TestConfig {
        type Input = u8;
        type InputPredictor = ggrs::PredictRepeatLast;
        type State = u64;
        type Address = PeerId;
    }

    #[test]
    fn garbage_is_dropped_not_delivered() {
        let (mut socket, port) = ggrs_channel();
        lock(&port.queues)
            .incoming
            .push_back((PeerId([1; 32]), vec![0xff; 40]));
        assert!(socket.receive_all_messages().is_empty());
        assert_eq!(port.stats().undecodable, 1);
        assert!(decode_message(&[0; DATAGRAM_BYTES_MAX + 1]).is_err());
    }

    /// Two nodes on the in-memory network run a GGRS P2P session over their link's datagrams;
    /// every frame both confirm carries the same inputs, and each side's local inputs arrive.
    #[test]
    fn two_nodes_confirm_the_same_inputs() {
        let net = MemoryNetwork::new();
        let mut nodes = crate::transport::memory::test_nodes(&net, 2);
        let ids: Vec<PeerId> = nodes.iter().map(|n| n.overlay.peer_id()).collect();
        let start = std::time::Instant::now();
        let now = || start.elapsed().as_millis() as u64;
        while nodes.iter().any(|n| n.overlay.link_count() == 0) {
            for n in &mut nodes {
                n.tick(now());
            }
            assert!(now() < 5_000, "nodes never linked");
        }
        // Players in PeerId order on both sides: handle 0 is the smaller id.
        let mut order = ids.clone();
        order.sort();
        let mut sessions = Vec::new();
        let mut ports = Vec::new();
        for me in &ids {
            let (socket, port) = ggrs_channel();
            let mut b = SessionBuilder::<TestConfig>::new()
                .with_num_players(2)
                .expect("2 players");
            for (handle, p) in order.iter().enumerate() {
                let kind = if p == me {
                    PlayerType::Local
                } else {
                    PlayerType::Remote(*p)
                };
                b = b.add_player(kind, handle).expect("valid player");
            }
            sessions.push(b.start_p2p_session(socket).expect("session starts"));
            ports.push(port);
        }
        // confirmed[i][f] = the inputs session i simulated frame f with, all confirmed.
        let mut confirmed: Vec<std::collections::BTreeMap<i32, Vec<u8>>> =
            vec![Default::default(); 2];
        let mut state = [0u64; 2];
        let mut frame = [0i32; 2];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while confirmed.iter().any(|c| c.len() < 60) {
            assert!(
                std::time::Instant::now() < deadline,
                "frames not confirmed in time: {:?}",
                confirmed.iter().map(|c| c.len()).collect::<Vec<_>>()
            );
            for i in 0..2 {
                nodes[i].tick(now());
                ports[i].pump(&mut nodes[i]);
                let s = &mut sessions[i];
                s.poll_remote_clients();
                if s.current_state() != ggrs::SessionState::Running {
                    continue;
                }
                let handle = order.iter().position(|p| *p == ids[i]).expect("listed");
                // Player i's inputs carry its number in the tens: recognisable per player.
                let input = (s.current_frame() % 7) as u8 + 10 * (i as u8 + 1);
                s.add_local_input(handle, input).expect("local player");
                let requests = match s.advance_frame() {
                    Ok(r) => r,
                    Err(ggrs::GgrsError::PredictionThreshold) => continue,
                    Err(e) => panic!("session {i}: {e}"),
                };
                for r in requests {
                    match r {
                        GgrsRequest::SaveGameState { cell, frame: f } => {
                            assert_eq!(f, frame[i]);
                            cell.save(f, Some(state[i]), None);
                        }
                        GgrsRequest::LoadGameState { cell, frame: f } => {
                            state[i] = cell.load().expect("saved before");
                            frame[i] = f;
                        }
                        GgrsRequest::AdvanceFrame { inputs } => {
                            let all_confirmed = inputs
                                .iter()
                                .all(|(_, st)| *st == ggrs::InputStatus::Confirmed);
                            let values: Vec<u8> = inputs.iter().map(|(v, _)| *v).collect();
                            for v in &values {
                                state[i] = state[i].wrapping_mul(31).wrapping_add(u64::from(*v));
                            }
                            if all_confirmed {
                                confirmed[i].insert(frame[i], values);
                            }
                            frame[i] += 1;
                        }
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // Both sides simulated every frame they both confirmed with the same inputs, each input
        // from the player that owns its handle.
        let mut common = 0;
        for (f, a) in &confirmed[0] {
            if let Some(b) = confirmed[1].get(f) {
                assert_eq!(a, b, "frame {f}");
                for (handle, v) in a.iter().enumerate() {
                    let owner = ids
                        .iter()
                        .position(|p| *p == order[handle])
                        .expect("listed");
                    assert_eq!(*v / 10, owner as u8 + 1, "frame {f} handle {handle}");
                }
                common += 1;
            }
        }
        assert!(common >= 50, "only {common} frames confirmed on both sides");
        for p in &ports {
            let st = p.stats();
            assert!(st.sent > 0 && st.received > 0, "{st:?}");
            assert_eq!(st.undecodable, 0);
        }
    }
}
