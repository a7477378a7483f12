//! In-memory transport: peers in one process linked through a shared hub. For tests of the glue
//! (several Bevy `App`s in one process) and for examples; real links use matchbox.
//!
//! [`MemoryNetwork::join`] plays the bootstrap server: it introduces the newcomer to a few of
//! the existing members (never all of them). Further links open only when the overlay asks
//! (`dial` after the other side's `accept`), like the real transport.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{DATAGRAM_BYTES_MAX, DATAGRAMS_QUEUED_MAX, Transport, TransportEvent};
use crate::proto::identity::PeerId;
use crate::proto::overlay::{LinkId, TransportId};

/// A shared in-memory network. Clone it to hand it to several peers.
#[derive(Clone, Debug, Default)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<Hub>>,
}

#[derive(Debug, Default)]
struct Hub {
    members: BTreeMap<PeerId, Member>,
    links: BTreeMap<u64, (PeerId, PeerId)>,
    next_link: u64,
}

#[derive(Debug, Default)]
struct Member {
    inbox: Vec<TransportEvent>,
    datagrams: std::collections::VecDeque<(LinkId, Vec<u8>)>,
    accepts: BTreeSet<PeerId>,
}

impl Hub {
    fn open(&mut self, a: PeerId, b: PeerId) {
        self.next_link += 1;
        let id = self.next_link;
        self.links.insert(id, (a, b));
        let tid = |side: u8| {
            let mut t = [0u8; 16];
            t[..8].copy_from_slice(&id.to_le_bytes());
            t[8] = side;
            TransportId(t)
        };
        if let Some(m) = self.members.get_mut(&a) {
            m.inbox.push(TransportEvent::LinkUp {
                link: LinkId(id),
                local: tid(0),
                remote: tid(1),
            });
        }
        if let Some(m) = self.members.get_mut(&b) {
            m.inbox.push(TransportEvent::LinkUp {
                link: LinkId(id),
                local: tid(1),
                remote: tid(0),
            });
        }
    }

    fn close(&mut self, link: u64) {
        if let Some((a, b)) = self.links.remove(&link) {
            for p in [a, b] {
                if let Some(m) = self.members.get_mut(&p) {
                    m.inbox
                        .push(TransportEvent::LinkDown { link: LinkId(link) });
                }
            }
        }
    }
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    fn hub(&self) -> MutexGuard<'_, Hub> {
        // A poisoned hub only means another test thread panicked; the data is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Join as `peer`, introduced to up to `introductions` existing members (the most recent).
    pub fn join(&self, peer: PeerId, introductions: usize) -> MemoryTransport {
        let mut hub = self.hub();
        let others: Vec<PeerId> = hub
            .members
            .keys()
            .copied()
            .rev()
            .take(introductions)
            .collect();
        hub.members.insert(peer, Member::default());
        for other in others {
            hub.open(other, peer);
        }
        MemoryTransport {
            net: self.clone(),
            me: peer,
        }
    }

    /// Members currently joined.
    pub fn members(&self) -> usize {
        self.hub().members.len()
    }
}

/// One peer's end of a [`MemoryNetwork`]. Dropping it leaves the network and closes its links.
#[derive(Debug)]
pub struct MemoryTransport {
    net: MemoryNetwork,
    me: PeerId,
}

impl Transport for MemoryTransport {
    fn poll(&mut self, _now_ms: u64, out: &mut Vec<TransportEvent>) {
        if let Some(m) = self.net.hub().members.get_mut(&self.me) {
            out.append(&mut m.inbox);
        }
    }

    fn send(&mut self, link: LinkId, frame: Vec<u8>) {
        let mut hub = self.net.hub();
        let Some(&(a, b)) = hub.links.get(&link.0) else {
            return;
        };
        let to = if a == self.me { b } else { a };
        if let Some(m) = hub.members.get_mut(&to) {
            m.inbox.push(TransportEvent::Frame { link, bytes: frame });
        }
    }

    fn dial(&mut self, _now_ms: u64, peer: PeerId) {
        let mut hub = self.net.hub();
        let agreed = hub
            .members
            .get_mut(&peer)
            .is_some_and(|m| m.accepts.remove(&self.me));
        if agreed {
            hub.open(self.me, peer);
        }
    }

    fn accept(&mut self, _now_ms: u64, peer: PeerId) {
        if let Some(m) = self.net.hub().members.get_mut(&self.me) {
            m.accepts.insert(peer);
        }
    }

    fn signal(&mut self, _now_ms: u64, _from: PeerId, _payload: Vec<u8>) {
        // Memory links need no signalling.
    }

    fn close(&mut self, link: LinkId) {
        self.net.hub().close(link.0);
    }

    fn send_datagram(&mut self, link: LinkId, datagram: Vec<u8>) {
        if datagram.len() > DATAGRAM_BYTES_MAX {
            return;
        }
        let mut hub = self.net.hub();
        let Some(&(a, b)) = hub.links.get(&link.0) else {
            return;
        };
        let to = if a == self.me { b } else { a };
        if let Some(m) = hub.members.get_mut(&to) {
            if m.datagrams.len() >= DATAGRAMS_QUEUED_MAX {
                m.datagrams.pop_front();
            }
            m.datagrams.push_back((link, datagram));
        }
    }

    fn poll_datagrams(&mut self, out: &mut Vec<(LinkId, Vec<u8>)>) {
        if let Some(m) = self.net.hub().members.get_mut(&self.me) {
            out.extend(m.datagrams.drain(..));
        }
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        let mut hub = self.net.hub();
        let mine: Vec<u64> = hub
            .links
            .iter()
            .filter(|(_, (a, b))| *a == self.me || *b == self.me)
            .map(|(l, _)| *l)
            .collect();
        for l in mine {
            hub.close(l);
        }
        hub.members.remove(&self.me);
    }
}

/// `n` nodes with the default overlay config on `net`, identities and seeds `[1; 32]` …
/// `[n; 32]`, each introduced to up to 3 others (a test fixture).
#[cfg(test)]
pub(crate) fn test_nodes(net: &MemoryNetwork, n: u8) -> Vec<super::Node<MemoryTransport>> {
    use crate::proto::identity::Identity;
    use crate::proto::overlay::{Overlay, OverlayConfig};
    (1..=n)
        .map(|i| {
            let id = Identity::from_seed([i; 32]);
            let peer = id.peer_id();
            super::Node::new(
                Overlay::new(id, OverlayConfig::default(), 0, [i; 32]),
                net.join(peer, 3),
            )
        })
        .collect()
}
