//! What reaches us: routed messages delivered here, iterative lookups, and link requests
//! and their replies.

use super::*;

impl Overlay {
    pub(super) fn deliver(&mut self, now_ms: u64, msg: Routed) {
        let Routed {
            id,
            origin,
            target,
            hops,
            exact,
            return_via,
            ..
        } = msg;
        if origin != self.me {
            let key = prefix8(&origin);
            if let Some(i) = self.return_paths.iter().position(|r| r.origin == key) {
                self.return_paths.remove(i);
            }
            if self.return_paths.len() >= RETURN_PATHS_MAX {
                self.return_paths.pop_front();
            }
            let via = return_via
                .filter(|r| *r != self.me)
                .map_or([0; 4], |r| [r.0[0], r.0[1], r.0[2], r.0[3]]);
            self.return_paths.push_back(ReturnPath {
                origin: key,
                via,
                last_id: id,
            });
        }
        match msg.body {
            Body::Data(payload) => self.events.push_back(Event::Delivered {
                origin,
                target,
                payload,
                hops,
            }),
            Body::FindNode { key } => {
                if origin != self.me {
                    self.table.insert(origin);
                }
                let mut peers = self.table.closest(&key, self.cfg.bucket_size);
                peers.retain(|p| *p != origin);
                peers.push(self.me);
                peers.sort_by_key(|p| p.distance(&key));
                if origin == self.me {
                    self.events.push_back(Event::LookupDone { key, peers });
                } else {
                    self.originate(now_ms, origin, true, Body::Nodes { key, peers });
                }
            }
            Body::Nodes { key, peers } => self.on_nodes(now_ms, origin, key, peers),
            Body::Connect(signed) => self.on_connect(now_ms, origin, signed),
            Body::ConnectReply(reply) => self.on_connect_reply(now_ms, origin, reply),
            Body::Signal(signed) => match self.check_signed(&signed) {
                Ok(from) if signed.value.to == self.me => self.events.push_back(Event::Signal {
                    from,
                    payload: signed.value.payload,
                }),
                Ok(_) => tracing::warn!("signal for another peer dropped"),
                Err(reason) => tracing::warn!(reason, "signal dropped"),
            },
            Body::Subscribe { topic } => {
                let topics_max = self.cfg.topics_max;
                if !self.rendezvous.contains_key(&topic) && self.rendezvous.len() >= topics_max {
                    return tracing::debug!("rendezvous full: subscription dropped");
                }
                let subs = self.rendezvous.entry(topic).or_default();
                if subs.len() < self.cfg.subscribers_max || subs.contains_key(&origin) {
                    subs.insert(origin, now_ms);
                }
            }
            Body::Publish { topic, payload } if exact => {
                if self.subscriptions.contains(&topic) {
                    self.events.push_back(Event::Published {
                        topic,
                        origin,
                        payload,
                    });
                }
            }
            Body::Publish { topic, payload } => {
                let subs: Vec<PeerId> = self
                    .rendezvous
                    .get(&topic)
                    .map(|s| s.keys().copied().collect())
                    .unwrap_or_default();
                for s in subs {
                    if s == self.me {
                        if self.subscriptions.contains(&topic) {
                            self.events.push_back(Event::Published {
                                topic,
                                origin,
                                payload: payload.clone(),
                            });
                        }
                        continue;
                    }
                    let copy = Routed {
                        id: self.fresh_id(),
                        origin,
                        target: s,
                        exact: true,
                        hops: 0,
                        via: self.return_waypoint(&s),
                        return_via: None,
                        reply_to: None,
                        visited: 0,
                        body: Body::Publish {
                            topic,
                            payload: payload.clone(),
                        },
                    };
                    self.remember(&copy, None);
                    self.route(now_ms, copy, None, None);
                }
            }
        }
    }

    /// A random key sharing exactly `b` leading bits with us.
    pub(super) fn random_key_in_bucket(&mut self, b: u8) -> PeerId {
        let mut key = [0u8; 32];
        self.rng.fill_bytes(&mut key);
        let mut k = PeerId(key);
        for i in 0..=b {
            if k.bit(i) != self.me.bit(i) {
                k = k.with_bit_flipped(i);
            }
        }
        k.with_bit_flipped(b)
    }

    pub(super) fn on_nodes(&mut self, now_ms: u64, from: PeerId, key: PeerId, peers: Vec<PeerId>) {
        for p in peers.iter().take(msg::PEERS_MAX) {
            if *p != self.me {
                let via = (*p != from).then_some(&from);
                self.table.insert_via(*p, via);
            }
        }
        let Some(l) = self.lookups.get_mut(&key) else {
            return;
        };
        l.in_flight = l.in_flight.saturating_sub(1);
        self.step_lookup(now_ms, key);
    }

    /// Query the closest known peers to `key` not yet asked (Kademlia's iterative lookup, each
    /// query an exact routed message); finish when the closest known have all been asked.
    pub(super) fn step_lookup(&mut self, now_ms: u64, key: PeerId) {
        let closest = self.table.closest(&key, self.cfg.bucket_size);
        let Some(l) = self.lookups.get_mut(&key) else {
            return;
        };
        let mut to_ask = Vec::new();
        for p in closest {
            if l.in_flight + to_ask.len() >= LOOKUP_PARALLELISM || l.queries_left == 0 {
                break;
            }
            if !l.asked.contains(&p) {
                l.asked.push(p);
                l.queries_left -= 1;
                to_ask.push(p);
            }
        }
        l.in_flight += to_ask.len();
        if l.in_flight == 0 {
            return self.finish_lookup(now_ms, key);
        }
        for p in to_ask {
            self.originate(now_ms, p, true, Body::FindNode { key });
        }
    }

    pub(super) fn finish_lookup(&mut self, now_ms: u64, key: PeerId) {
        if self.lookups.remove(&key).is_none() {
            return;
        }
        let peers = self.table.closest(&key, self.cfg.bucket_size);
        if key == self.me {
            // Our neighbourhood is known: now look into every bucket we know nothing of; a
            // lookup of a random key in bucket b finds peers there if any exist.
            for b in 0..self.table.bucket_count() {
                if self.table.bucket(b).is_empty() {
                    let k = self.random_key_in_bucket(u8::try_from(b).expect("≤ 255 buckets"));
                    self.lookup(now_ms, k);
                }
            }
        }
        self.events.push_back(Event::LookupDone { key, peers });
    }

    pub(super) fn return_path(&self, origin: &PeerId) -> Option<&ReturnPath> {
        let key = prefix8(origin);
        self.return_paths.iter().rev().find(|r| r.origin == key)
    }

    /// The waypoint `origin` asked replies to take, if we know that peer's full id.
    pub(super) fn return_waypoint(&self, origin: &PeerId) -> Option<PeerId> {
        let r = self.return_path(origin)?;
        (r.via != [0; 4])
            .then(|| self.table.by_prefix(&r.via))
            .flatten()
            .map(|c| c.id)
    }

    pub(super) fn fresh_id(&mut self) -> u64 {
        self.rng.next_u64()
    }

    pub(super) fn check_signed<T: serde::Serialize>(
        &self,
        signed: &Signed<T>,
    ) -> Result<PeerId, &'static str> {
        let bytes = wire::encode_body(&signed.value).map_err(|_| "unencodable value")?;
        identity::verify(
            &signed.public_key,
            Domain::SignalRequest,
            &bytes,
            &signed.signature,
        )
        .map_err(|_| "bad signature")?;
        Ok(PeerId::from_public_key(&signed.public_key))
    }

    pub(super) fn on_connect(
        &mut self,
        now_ms: u64,
        origin: PeerId,
        signed: Signed<ConnectRequest>,
    ) {
        if signed.value.to != self.me || PeerId::from_public_key(&signed.public_key) != origin {
            return tracing::warn!("connect request for someone else dropped");
        }
        let author = origin;
        let already = self.linked_peers().any(|(p, _)| p == author);
        let limit = self.inbound_soft_max();
        let room = if already || !author.meets_difficulty(self.cfg.id_difficulty_bits) {
            Room::None
        } else {
            self.room_for(now_ms, &author, limit, signed.value.needed)
        };
        let eligible = !matches!(room, Room::None);
        // The signature is checked only before we commit to a link: a forged request we refuse
        // costs its claimed author one refusal it ignores (no dial of its own carries that
        // nonce), and refusals are common while a network grows, so this saves a verification
        // on each of them.
        if eligible && let Err(reason) = self.check_signed(&signed) {
            return tracing::warn!(reason, "connect request dropped");
        }
        let accept = self.take_room(room);
        if !accept {
            self.stats.connects_refused += 1;
        }
        if accept {
            self.table.insert(author);
            self.expected.insert(author, now_ms);
            self.events.push_back(Event::Accept { peer: author });
        }
        let reply = ConnectReply {
            to: author,
            nonce: signed.value.nonce,
            accept,
        };
        self.originate(now_ms, author, true, Body::ConnectReply(reply));
    }

    /// `author` is the routed message's origin: unauthenticated, so the reply counts only if
    /// it echoes the nonce of our pending request to that very peer (see `Body::ConnectReply`).
    pub(super) fn on_connect_reply(&mut self, now_ms: u64, author: PeerId, reply: ConnectReply) {
        if reply.to != self.me {
            return tracing::warn!("connect reply for someone else dropped");
        }
        let Some(dial) = self.dials.get_mut(&author) else {
            return;
        };
        if dial.nonce != reply.nonce || dial.accepted {
            return;
        }
        if reply.accept {
            dial.accepted = true;
            dial.started_ms = now_ms;
            self.events.push_back(Event::Dial { peer: author });
        } else {
            self.stats.dials_refused += 1;
            self.dials.remove(&author);
            // Refused for want of room: alive, so not a failure; just not again soon.
            if self.refused.len() >= REFUSED_MAX {
                self.refused.pop_front();
            }
            self.refused
                .push_back((prefix8(&author), now_ms + REFUSED_BACKOFF_MS));
        }
    }
}
