//! The link set: which links we need, room for new ones, liveness, and the periodic
//! maintenance that dials toward a finger per occupied bucket plus the closest neighbours.

use super::*;

impl Overlay {
    /// Links others may open to us freely; beyond it we accept only links that help us, so
    /// that room remains for our own fingers and neighbours.
    pub(super) fn inbound_soft_max(&self) -> usize {
        self.cfg
            .links_max
            .saturating_sub(self.cfg.neighbours)
            .max(1)
    }

    /// Links that count against the cap: live ones plus those being requested or opened.
    pub(super) fn committed_links(&self) -> usize {
        self.links.len() + self.expected.len() + self.dials.len()
    }

    /// Whether we rely on `link` for routing: the only link in its bucket, or a neighbour.
    pub(super) fn needs_link(&self, link: LinkId) -> bool {
        let Some(peer) = self
            .links
            .iter()
            .find(|l| l.id == link)
            .and_then(Link::peer)
        else {
            return true;
        };
        let b = self.me.bucket_of(&peer);
        let alone = !self
            .links
            .iter()
            .any(|l| l.id != link && l.peer().is_some_and(|p| self.me.bucket_of(&p) == b));
        alone || self.is_neighbour(&peer)
    }

    pub(super) fn is_neighbour(&self, peer: &PeerId) -> bool {
        let d = self.me.distance(peer);
        self.table
            .closest(&self.me, self.cfg.neighbours)
            .last()
            .is_none_or(|far| d <= self.me.distance(far))
    }

    /// Whether `peer` would fill an empty bucket or be one of our neighbours.
    pub(super) fn would_help(&self, peer: &PeerId) -> bool {
        let b = self.me.bucket_of(peer);
        let bucket_linked = self
            .links
            .iter()
            .any(|l| l.peer().is_some_and(|p| self.me.bucket_of(&p) == b));
        !bucket_linked || self.is_neighbour(peer)
    }

    /// Ensure a free slot for a link to `peer`, closing a link neither side needs if we are full
    /// and the new one would help. Returns whether a slot is available.
    pub(super) fn make_room_for(&mut self, now_ms: u64, peer: &PeerId, limit: usize) -> bool {
        let room = self.room_for(now_ms, peer, limit, false);
        self.take_room(room)
    }

    /// Act on a [`Overlay::room_for`] answer: close the link it names, if any. Returns whether
    /// the new link fits.
    pub(super) fn take_room(&mut self, room: Room) -> bool {
        match room {
            Room::Free => true,
            Room::None => false,
            Room::Closing(v) => {
                self.stats.links_closed_for_room += 1;
                self.close_link(v);
                true
            }
        }
    }

    /// Whether a link to `peer` fits, and what it would take (no side effects). `needed`: the
    /// peer says its routing needs the link (see `ConnectRequest::needed`).
    pub(super) fn room_for(&self, now_ms: u64, peer: &PeerId, limit: usize, needed: bool) -> Room {
        if self.committed_links() < limit {
            return Room::Free;
        }
        // A peer we are dialing ourselves is wanted at both ends (two session members asking
        // for a direct link): that link helps even when the table would not ask for it.
        let helps = self.would_help(peer) || self.dials.contains_key(peer);
        // A link the asker needs (a hole in its buckets) gets the slots above the soft cap too:
        // refusing it left greedy routing stuck at that hole (the 10k-peer misses).
        if (helps || needed) && self.committed_links() < self.cfg.links_max {
            return Room::Free;
        }
        // Full: give up a link we do not need. For a link that helps us, prefer one the other
        // side does not need either, then the oldest; for one that does not, only a link
        // neither side needs (trading useless for possibly useful to the asker).
        let settle = self.cfg.handshake_timeout_ms;
        let victim = self
            .links
            .iter()
            .filter(|l| l.peer().is_some() && now_ms.saturating_sub(l.opened_ms) > settle)
            .filter(|l| helps || !l.remote_needs)
            .filter(|l| !self.needs_link(l.id))
            .min_by_key(|l| (l.remote_needs, l.opened_ms))
            .map(|l| l.id);
        victim.map_or(Room::None, Room::Closing)
    }

    pub(super) fn close_link(&mut self, link: LinkId) {
        if let Some(i) = self.links.iter().position(|l| l.id == link) {
            let l = self.links.swap_remove(i);
            if self.links.capacity() > self.links.len() + 2 {
                self.links.shrink_to(self.links.len() + 1);
            }
            if let Some(peer) = l.peer() {
                self.events.push_back(Event::PeerLeft { peer, link });
            }
            self.events.push_back(Event::CloseLink { link });
        }
    }

    pub(super) fn maintain(&mut self, now_ms: u64) {
        let hs = self.cfg.handshake_timeout_ms;
        // Abandon stuck handshakes, dials and expected dials.
        let stuck: Vec<LinkId> = self
            .links
            .iter()
            .filter(|l| {
                matches!(l.state, LinkState::Handshake(_))
                    && now_ms.saturating_sub(l.opened_ms) > hs
            })
            .map(|l| l.id)
            .collect();
        for link in stuck {
            tracing::debug!(?link, "handshake timed out");
            self.close_link(link);
        }
        let failed: Vec<PeerId> = self
            .dials
            .iter()
            .filter(|(_, d)| now_ms.saturating_sub(d.started_ms) > hs)
            .map(|(p, _)| *p)
            .collect();
        for p in failed {
            self.stats.dials_timed_out += 1;
            self.dials.remove(&p);
            self.table.note_failure(&p, 3);
        }
        self.expected.retain(|_, t| now_ms.saturating_sub(*t) <= hs);
        self.refused.retain(|(_, until)| *until > now_ms);
        self.release_spare_room();

        // Liveness.
        let timeout = self.cfg.link_timeout_ms;
        let dead: Vec<(LinkId, Option<PeerId>)> = self
            .links
            .iter()
            .filter(|l| now_ms.saturating_sub(l.last_recv_ms) > timeout)
            .map(|l| (l.id, l.peer()))
            .collect();
        for (link, peer) in dead {
            tracing::debug!(?link, "link silent: closing");
            self.close_link(link);
            if let Some(p) = peer {
                self.table.note_failure(&p, 3);
            }
        }
        // Idle links are pinged for liveness, busy ones now and then for their round-trip time.
        let idle = self.cfg.ping_idle_ms;
        let probe = self.cfg.rtt_probe_ms;
        let to_ping: Vec<LinkId> = self
            .links
            .iter()
            .filter(|l| {
                l.peer().is_some()
                    && l.ping.is_none()
                    && (now_ms.saturating_sub(l.last_recv_ms.min(l.last_send_ms)) >= idle
                        || now_ms.saturating_sub(l.last_ping_ms) >= probe)
            })
            .map(|l| l.id)
            .collect();
        for link in to_ping {
            let nonce = self.rng.next_u64();
            let needed = self.needs_link(link);
            if let Some(l) = self.links.iter_mut().find(|l| l.id == link) {
                l.ping = Some((nonce, now_ms));
                l.last_ping_ms = now_ms;
            }
            self.send_link(now_ms, link, &LinkMsg::Ping { nonce, needed });
        }
        for l in &mut self.links {
            if l.ping
                .is_some_and(|(_, sent)| now_ms.saturating_sub(sent) > timeout)
            {
                l.ping = None;
            }
        }

        // Refresh the neighbourhood (then every empty bucket: see `finish_lookup`).
        if now_ms >= self.next_refresh_ms && self.linked_peers().next().is_some() {
            self.next_refresh_ms = now_ms + self.cfg.refresh_ms;
            let me = self.me;
            self.lookup(now_ms, me);
        }
        let stale: Vec<PeerId> = self
            .lookups
            .iter()
            .filter(|(_, l)| now_ms.saturating_sub(l.started_ms) > hs)
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.finish_lookup(now_ms, key);
        }

        // Topics: renew our subscriptions, expire stale subscribers.
        if now_ms >= self.next_subscribe_ms {
            self.next_subscribe_ms = now_ms + self.cfg.subscribe_ms;
            let topics: Vec<PeerId> = self.subscriptions.iter().copied().collect();
            for topic in topics {
                self.originate(now_ms, topic, false, Body::Subscribe { topic });
            }
            let ttl = self.cfg.subscribe_ms * 3;
            for subs in self.rendezvous.values_mut() {
                subs.retain(|_, t| now_ms.saturating_sub(*t) <= ttl);
            }
            self.rendezvous.retain(|_, s| !s.is_empty());
        }

        self.shed_excess_links(now_ms);
        self.fill_links(now_ms);
    }

    /// Links opened on a bootstrap server's introduction can push us over the cap: close the
    /// least useful ones (needed by neither side first).
    pub(super) fn shed_excess_links(&mut self, now_ms: u64) {
        let settle = self.cfg.handshake_timeout_ms;
        while self.links.len() > self.cfg.links_max {
            let candidates: Vec<(bool, bool, LinkId)> = self
                .links
                .iter()
                .filter(|l| now_ms.saturating_sub(l.opened_ms) > settle)
                .map(|l| (self.needs_link(l.id), l.remote_needs, l.id))
                .collect();
            let Some(&(_, _, victim)) = candidates.iter().min() else {
                break;
            };
            self.stats.links_shed += 1;
            self.close_link(victim);
        }
    }

    /// Dial toward the wanted link set: a finger in every occupied bucket, then neighbours.
    pub(super) fn fill_links(&mut self, now_ms: u64) {
        let in_flight = self.dials.len();
        if in_flight >= self.cfg.dials_max {
            return;
        }
        let mut budget = self.cfg.dials_max - in_flight;
        let linked: BTreeSet<PeerId> = self
            .linked_peers()
            .map(|(p, _)| p)
            .chain(self.dials.keys().copied())
            .collect();
        let mut covered = vec![false; self.table.bucket_count()];
        for p in &linked {
            if let Some(b) = self.me.bucket_of(p)
                && let Some(c) = covered.get_mut(usize::from(b))
            {
                *c = true;
            }
        }
        let mut wants = Vec::new();
        for (b, is_covered) in covered.iter().enumerate() {
            if *is_covered {
                continue;
            }
            let bucket = self.table.bucket(b);
            if bucket.is_empty() {
                continue;
            }
            let pick = usize::try_from(self.rng.next_u32()).unwrap_or(0) % bucket.len();
            wants.push(bucket[pick].id);
        }
        for p in self.table.closest(&self.me, self.cfg.neighbours) {
            if !linked.contains(&p) && !wants.contains(&p) {
                wants.push(p);
            }
        }
        for p in wants {
            if budget == 0 {
                break;
            }
            if self.refused.iter().any(|(r, _)| *r == prefix8(&p)) {
                continue;
            }
            if !self.make_room_for(now_ms, &p, self.cfg.links_max) {
                break;
            }
            self.connect_for(now_ms, p, true);
            budget -= 1;
        }
    }
}
