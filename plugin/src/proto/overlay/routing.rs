//! Routing: choosing the next hop (greedy, exact, via pointers, the visited-Bloom walk),
//! per-hop delivery with acks and re-sends, and the `seen` ring that suppresses duplicates and
//! lets replies retrace their request's path.

use super::*;

/// The key bits of a `seen` entry (the rest are the peer it came from).
const SEEN_KEY_MASK: u64 = (1 << 40) - 1;

impl Overlay {
    /// The live link whose peer is closest to `target`, if it is closer than we are.
    /// `skip` is a peer treated as absent (the origin of a lookup, so it finds others).
    pub(super) fn next_hop(
        &self,
        target: &PeerId,
        skip: Option<PeerId>,
        avoid: Option<PeerId>,
    ) -> Option<LinkId> {
        let mut best: Option<(identity::Distance, LinkId)> = None;
        for l in &self.links {
            let Some(p) = l.peer() else { continue };
            if Some(p) == skip || Some(p) == avoid {
                continue;
            }
            let d = p.distance(target);
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, l.id));
            }
        }
        let own = if Some(self.me) == skip {
            None
        } else {
            Some(self.me.distance(target))
        };
        match (best, own) {
            (Some((d, l)), Some(o)) if d < o => Some(l),
            (Some((_, l)), None) => Some(l),
            _ => None,
        }
    }

    /// The link toward `target` by the way we learned of it: a direct link, or the linked peer
    /// that told us of it. Reliable before greedy routing has converged, because it retraces a
    /// path that worked.
    pub(super) fn via_link(&self, target: &PeerId, from: Option<PeerId>) -> Option<LinkId> {
        if let Some(l) = self.links.iter().find(|l| l.peer() == Some(*target)) {
            return Some(l.id);
        }
        let prefix = self.table.get(target)?.via;
        self.linked_by_prefix(&prefix, target, from)
    }

    /// A link to a peer whose id starts with `prefix` (all zeros: none), other than `not` and
    /// `from`.
    pub(super) fn linked_by_prefix(
        &self,
        prefix: &[u8],
        not: &PeerId,
        from: Option<PeerId>,
    ) -> Option<LinkId> {
        if prefix.iter().all(|b| *b == 0) || prefix.len() > 32 {
            return None;
        }
        self.links
            .iter()
            .find(|l| {
                l.peer()
                    .is_some_and(|p| p.0[..prefix.len()] == *prefix && p != *not && Some(p) != from)
            })
            .map(|l| l.id)
    }

    /// Choose the next hop of an exact message, possibly giving it a waypoint: when we learned
    /// of the target from a peer we are not linked to, head for that peer first (it knows the
    /// target), reaching it by the way we learned of *it*.
    pub(super) fn exact_hop(
        &self,
        msg: &mut Routed,
        skip: Option<PeerId>,
        from: Option<PeerId>,
    ) -> Option<LinkId> {
        if let Some(l) = self.links.iter().find(|l| l.peer() == Some(msg.target)) {
            return Some(l.id);
        }
        let visited = msg.visited;
        let fresh = |l: Option<LinkId>| l.filter(|l| self.link_unvisited(*l, visited));
        // A reply retraces the path of the message it answers.
        if let Some(rid) = msg.reply_to
            && let Some(l) = fresh(self.path_back(&msg.target, rid, from))
        {
            return Some(l);
        }
        if let Some(l) = fresh(self.via_link(&msg.target, from)) {
            return Some(l);
        }
        let (heading, _) = Self::heading(msg);
        if let Some(l) = fresh(self.via_link(&heading, from)) {
            return Some(l);
        }
        if msg.via.is_none() {
            let teller = self
                .table
                .get(&heading)
                .and_then(|c| self.table.by_prefix(&c.via))
                .map(|c| c.id)
                .filter(|t| *t != self.me && *t != heading);
            if let Some(t) = teller
                && let Some(l) = fresh(self.via_link(&t, from))
            {
                msg.via = Some(t);
                return Some(l);
            }
        }
        if let Some(l) = self.next_hop(&heading, skip, from)
            && self.link_unvisited(l, visited)
        {
            return Some(l);
        }
        // Stuck (links still forming): step to the unvisited link closest to the target even if
        // it is no closer than we are; the visited set keeps the walk from looping.
        self.links
            .iter()
            .filter(|l| l.peer().is_some_and(|p| Some(p) != from && Some(p) != skip))
            .filter(|l| self.link_unvisited(l.id, visited))
            .min_by_key(|l| l.peer().map(|p| p.distance(&heading)))
            .map(|l| l.id)
    }

    /// Whether the peer on `link` is (probably) not yet on the message's path.
    pub(super) fn link_unvisited(&self, link: LinkId, visited: u64) -> bool {
        self.links
            .iter()
            .find(|l| l.id == link)
            .and_then(Link::peer)
            .is_some_and(|p| visited & visit_bits(&p) != visit_bits(&p))
    }

    /// Where `msg` is headed next: its waypoint if it has one, else its target.
    pub(super) fn heading(msg: &Routed) -> (PeerId, bool) {
        match msg.via {
            Some(v) => (v, true),
            None => (msg.target, msg.exact),
        }
    }

    /// Forward or deliver `msg`; `from` is the peer that handed it to us (never sent back).
    pub(super) fn route(
        &mut self,
        now_ms: u64,
        mut msg: Routed,
        skip: Option<PeerId>,
        from: Option<PeerId>,
    ) {
        let skip = skip.or_else(|| {
            matches!(msg.body, Body::FindNode { .. } if !msg.exact).then_some(msg.origin)
        });
        if msg.hops >= self.cfg.hops_max {
            self.stats.routed_lost += 1;
            tracing::debug!(id = msg.id, "hop limit reached");
            return;
        }
        if msg.via == Some(self.me) || (msg.exact && msg.target == self.me) {
            // Reached the waypoint (or the target itself on the way to it).
            msg.via = None;
        }
        msg.visited |= visit_bits(&self.me);
        let (heading, exact) = Self::heading(&msg);
        if exact && heading == self.me {
            return self.deliver(now_ms, msg);
        }
        let hop = if exact {
            self.exact_hop(&mut msg, skip, from)
        } else {
            self.next_hop(&heading, skip, from)
        };
        match hop {
            Some(link) => {
                if msg.origin != self.me {
                    self.stats.forwarded += 1;
                }
                self.send_routed(now_ms, link, msg, skip, 0);
            }
            None if exact => {
                self.stats.routed_lost += 1;
                self.stats.no_route += 1;
                tracing::debug!(target = ?heading, "no route to exact target");
            }
            None if Some(self.me) == skip => {
                // A lookup of our own id with no links: nothing to ask.
            }
            None => self.deliver(now_ms, msg),
        }
    }

    pub(super) fn send_routed(
        &mut self,
        now_ms: u64,
        link: LinkId,
        msg: Routed,
        skip: Option<PeerId>,
        tries: u8,
    ) {
        let Some(l) = self.links.iter_mut().find(|l| l.id == link) else {
            return;
        };
        let seq = l.next_seq;
        l.next_seq = l.next_seq.wrapping_add(1);
        let rto = self.cfg.retransmit_ms << tries.min(6);
        let acks = std::mem::take(&mut l.owed_acks);
        let frame = LinkMsg::Routed { seq, acks, msg };
        self.send_link(now_ms, link, &frame);
        let LinkMsg::Routed { msg, .. } = frame else {
            unreachable!("constructed above")
        };
        if self.pending.len() >= self.cfg.pending_max {
            self.pending.pop_front();
            self.stats.routed_lost += 1;
        }
        self.pending.push_back(Pending {
            link,
            seq,
            msg,
            skip,
            due_ms: now_ms + rto,
            tries: tries + 1,
        });
    }

    pub(super) fn retransmit_due(&mut self, now_ms: u64) {
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].due_ms <= now_ms {
                due.push(self.pending.remove(i).expect("index in range"));
            } else {
                i += 1;
            }
        }
        if self.pending.is_empty() {
            // Pending hops are large (a whole routed message each); idle peers hold none.
            self.pending.shrink_to_fit();
        } else if self.pending.capacity() > QUEUE_KEEP && self.pending.len() < QUEUE_KEEP / 2 {
            self.pending.shrink_to(QUEUE_KEEP);
        }
        for p in due {
            if p.tries >= self.cfg.retries_max {
                self.stats.routed_lost += 1;
                continue;
            }
            self.stats.retransmits += 1;
            // A link that keeps missing acks is dead (its peer left without a word): close it.
            let mut silent_peer = None;
            if let Some(l) = self.links.iter_mut().find(|l| l.id == p.link) {
                l.strikes = l.strikes.saturating_add(1);
                silent_peer = l.peer();
                // Missed acks alone do not condemn a link we heard from lately: a slow peer (a
                // browser tab drawing a few frames a second) acks late but is alive.
                let heard_lately = now_ms.saturating_sub(l.last_recv_ms)
                    <= STRIKE_SILENCE_RTOS * self.cfg.retransmit_ms;
                if l.strikes >= LINK_STRIKES_MAX && !heard_lately {
                    self.close_link(p.link);
                    if let Some(peer) = silent_peer {
                        self.table.note_failure(&peer, 3);
                    }
                }
            }
            let alive = self.links.iter().any(|l| l.id == p.link);
            let mut msg = p.msg;
            let (heading, exact) = Self::heading(&msg);
            // Re-send once on the same link (a lost frame), then route around it.
            let link = if alive && p.tries < 2 {
                Some(p.link)
            } else if exact {
                self.exact_hop(&mut msg, p.skip, silent_peer)
            } else {
                self.next_hop(&heading, p.skip, silent_peer)
            };
            match link {
                Some(link) => self.send_routed(now_ms, link, msg, p.skip, p.tries),
                None if !exact && Some(self.me) != p.skip => self.deliver(now_ms, msg),
                None => self.stats.routed_lost += 1,
            }
        }
    }

    /// The 40-bit key a message is remembered by: the low bits of its `seen` entry.
    pub(super) fn seen_key(origin: &PeerId, id: u64) -> u64 {
        (u64::from_le_bytes(prefix8(origin)) ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            & SEEN_KEY_MASK
    }

    /// Record `msg` as seen, with the peer it came from (the way back along its path).
    pub(super) fn remember(&mut self, msg: &Routed, from: Option<&PeerId>) {
        if self.seen.len() >= self.cfg.seen_max {
            self.seen.pop_front();
        }
        let k = Self::seen_key(&msg.origin, msg.id);
        let from_bits = from.map_or(0, |f| {
            u64::from_le_bytes([0, 0, 0, 0, 0, f.0[0], f.0[1], f.0[2]])
        });
        self.seen.push_back(k | from_bits);
    }

    pub(super) fn seen_before(&mut self, msg: &Routed, from: &PeerId) -> bool {
        let k = Self::seen_key(&msg.origin, msg.id);
        if self.seen.iter().any(|e| e & SEEN_KEY_MASK == k) {
            return true;
        }
        self.remember(msg, Some(from));
        false
    }

    /// The link a reply to message `id` of `origin` should take: back the way it came.
    pub(super) fn path_back(
        &self,
        origin: &PeerId,
        id: u64,
        from: Option<PeerId>,
    ) -> Option<LinkId> {
        let k = Self::seen_key(origin, id);
        let e = self.seen.iter().rev().find(|e| *e & SEEN_KEY_MASK == k)?;
        self.linked_by_prefix(&e.to_le_bytes()[5..], &self.me, from)
    }
}
