//! `meshwork validator`: a ledger [`Validator`] over a crash-safe [`RedbStore`] in a data
//! directory, taking ledger messages over a local TCP socket.
//!
//! # Local protocol
//!
//! Until the mesh carries ledger messages, clients reach the validator over TCP (by default on
//! 127.0.0.1 only). Both directions are a stream of frames, each `length: u32 LE` followed by
//! one [`LedgerMsg`] body of that many bytes (bincode, the same bytes as
//! [`LedgerMsg::encode`], at most [`MESSAGE_BYTES_MAX`]). A client sends `Order`, `Confirm`,
//! `Report`, `Reconfigure` or `Handoff`; the validator answers each order with `Vote` or
//! `Reject`, in the order the orders arrived on that connection. An undecodable or oversized
//! frame closes the connection. On start the node prints one line to stdout:
//! `validator <peer id> epoch <n>: <k> locks on record, listening on <addr>` (with
//! `--listen 127.0.0.1:0` the port is the one the OS picked).
//!
//! # Batching
//!
//! Every order that arrived while the previous batch was being processed (up to
//! `--batch-max`) goes through one [`Validator::handle_orders`]: one batched signature check,
//! **one durable redb commit** for all the batch's locks, then one vote signature for the batch.
//! So the fsync cost is paid per batch, not per order, and a vote leaves the process only after
//! the commit holding its lock returned.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

use meshwork::persist::RedbStore;
use meshwork::proto::identity::{Identity, PeerId};
use meshwork::proto::ledger::{
    Certificate, Genesis, LedgerMsg, LedgerStore, RejectReason, SignedOrder, Validator,
};
use meshwork::proto::wire::{self, MESSAGE_BYTES_MAX};

/// `meshwork validator` options.
#[derive(clap::Args, Debug, Clone)]
pub struct ValidatorArgs {
    /// Directory of the validator's state (`ledger.redb`) and, by default, its key.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The genesis (a bincode `Genesis`, as `wire::encode_body` writes it). Read on every start;
    /// used only when the store is empty.
    #[arg(long)]
    pub genesis: PathBuf,
    /// The validator's key file (hex seed; created if missing). Default: `<data-dir>/validator.key`.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Where to listen for ledger clients (port 0: any free port, printed on start).
    #[arg(long, default_value = "127.0.0.1:3537")]
    pub listen: SocketAddr,
    /// Most orders voted in one batch (one commit, one signature).
    #[arg(long, default_value_t = 1024)]
    pub batch_max: usize,
}

/// Inputs of the validator loop, from the listener and connection threads.
enum Input {
    Opened(u64, TcpStream),
    Message(u64, LedgerMsg),
    Closed(u64),
}

/// Counters printed every few seconds.
#[derive(Default)]
struct Stats {
    orders: u64,
    votes: u64,
    batches: u64,
    dropped: u64,
}

/// Run the validator until the process is killed. Errors are startup failures.
pub fn run(args: &ValidatorArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    let key = args
        .key
        .clone()
        .unwrap_or_else(|| args.data_dir.join("validator.key"));
    let identity = Identity::load_or_create(&key, 0).map_err(|e| e.to_string())?;
    let genesis_bytes =
        std::fs::read(&args.genesis).map_err(|e| format!("{}: {e}", args.genesis.display()))?;
    let genesis: Genesis = wire::decode(&genesis_bytes)
        .map_err(|e| format!("{}: not a genesis: {e}", args.genesis.display()))?;
    let store = RedbStore::open(&args.data_dir.join("ledger.redb")).map_err(|e| e.to_string())?;
    let locks = store.locks().map_err(|e| e.to_string())?.len();
    let peer_id = identity.peer_id();
    let mut validator = Validator::new(identity, &genesis, store).map_err(|e| e.to_string())?;
    if validator
        .committee()
        .index_of(&validator.public_key())
        .is_none()
    {
        tracing::warn!("this key is not in the current committee: every order will be refused");
    }
    let listener = TcpListener::bind(args.listen).map_err(|e| format!("{}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "validator {peer_id} epoch {}: {locks} locks on record, listening on {addr}",
        validator.epoch().0
    );
    let (tx, rx) = sync_channel::<Input>(8192);
    std::thread::spawn(move || accept(&listener, &tx));
    serve(&mut validator, &rx, args.batch_max.max(1));
    Ok(())
}

fn accept(listener: &TcpListener, tx: &SyncSender<Input>) {
    let mut next = 0u64;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        // A client that stops reading must not stall the validator for long.
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        let Ok(reader) = stream.try_clone() else {
            continue;
        };
        next += 1;
        let conn = next;
        if tx.send(Input::Opened(conn, stream)).is_err() {
            return;
        }
        let tx = tx.clone();
        std::thread::spawn(move || read_frames(conn, reader, &tx));
    }
}

fn read_frames(conn: u64, stream: TcpStream, tx: &SyncSender<Input>) {
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    loop {
        let mut len = [0u8; 4];
        if r.read_exact(&mut len).is_err() {
            break;
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MESSAGE_BYTES_MAX {
            tracing::debug!("connection {conn}: frame of {len} bytes, closing");
            break;
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            break;
        }
        match LedgerMsg::decode(&body) {
            Ok(msg) => {
                if tx.send(Input::Message(conn, msg)).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!("connection {conn}: {e}, closing");
                break;
            }
        }
    }
    let _ = tx.send(Input::Closed(conn));
}

/// The pseudo peer id a local connection's replies are addressed to.
fn conn_peer(conn: u64) -> PeerId {
    let mut tag = b"meshwork/node/local\0".to_vec();
    tag.extend_from_slice(&conn.to_le_bytes());
    PeerId::hash_of(&tag)
}

/// Encode `msg` as one frame onto `out`.
fn frame(out: &mut Vec<u8>, msg: &LedgerMsg) {
    match msg.encode() {
        Ok(body) => {
            let len = u32::try_from(body.len()).expect("bodies are at most MESSAGE_BYTES_MAX");
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&body);
        }
        Err(e) => tracing::warn!("cannot encode a reply: {e}"),
    }
}

struct Loop<'a> {
    validator: &'a mut Validator<RedbStore>,
    conns: BTreeMap<u64, TcpStream>,
    peers: BTreeMap<PeerId, u64>,
    out: BTreeMap<u64, Vec<u8>>,
    batch: Vec<(u64, SignedOrder, Vec<Certificate>)>,
    stats: Stats,
}

fn serve(validator: &mut Validator<RedbStore>, rx: &Receiver<Input>, batch_max: usize) {
    let mut l = Loop {
        validator,
        conns: BTreeMap::new(),
        peers: BTreeMap::new(),
        out: BTreeMap::new(),
        batch: Vec::new(),
        stats: Stats::default(),
    };
    let mut last_report = Instant::now();
    let mut reported = 0u64;
    while let Ok(first) = rx.recv() {
        l.input(first);
        // Everything already queued joins this batch.
        while l.batch.len() < batch_max {
            match rx.try_recv() {
                Ok(input) => l.input(input),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        l.flush_orders();
        l.send();
        if last_report.elapsed() >= Duration::from_secs(10) && l.stats.orders > reported {
            let s = &l.stats;
            tracing::info!(
                "{} orders, {} votes, {} batches ({:.1} orders per batch), {} messages for peers not connected",
                s.orders,
                s.votes,
                s.batches,
                s.orders as f64 / s.batches.max(1) as f64,
                s.dropped
            );
            reported = s.orders;
            last_report = Instant::now();
        }
    }
}

impl Loop<'_> {
    fn input(&mut self, input: Input) {
        match input {
            Input::Opened(conn, stream) => {
                self.peers.insert(conn_peer(conn), conn);
                self.conns.insert(conn, stream);
            }
            Input::Closed(conn) => {
                // Votes already decided for it are still sent (or fail) in this round.
                self.flush_orders();
                self.send();
                self.peers.remove(&conn_peer(conn));
                self.conns.remove(&conn);
            }
            Input::Message(conn, LedgerMsg::Order { order, proofs }) => {
                self.batch.push((conn, order, proofs));
            }
            Input::Message(conn, msg) => {
                // Keep each connection's order: orders before this message are voted first.
                self.flush_orders();
                if let Err(e) = self.validator.handle_message(conn_peer(conn), msg) {
                    tracing::debug!("connection {conn}: {e}");
                }
                self.route_outbox();
            }
        }
    }

    /// Vote on the batch: one signature check pass, one commit, one vote signature.
    fn flush_orders(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let refs: Vec<(&SignedOrder, &[Certificate])> =
            batch.iter().map(|(_, o, p)| (o, p.as_slice())).collect();
        let results = self.validator.handle_orders(&refs);
        self.stats.batches += 1;
        for ((conn, order, _), result) in batch.iter().zip(results) {
            self.stats.orders += 1;
            let digest = order.order.digest();
            let reply = match result {
                Ok(vote) => {
                    self.stats.votes += 1;
                    LedgerMsg::Vote {
                        order: digest,
                        vote,
                    }
                }
                Err(e) => LedgerMsg::Reject {
                    order: digest,
                    reason: RejectReason::of(&e),
                },
            };
            frame(self.out.entry(*conn).or_default(), &reply);
        }
        self.route_outbox();
    }

    /// Queue the validator's own messages: to a connection if addressed to one, else dropped
    /// (peers beyond this socket are reached once the mesh carries ledger messages).
    fn route_outbox(&mut self) {
        while let Some((to, msg)) = self.validator.poll_transmit() {
            match self.peers.get(&to) {
                Some(conn) => frame(self.out.entry(*conn).or_default(), &msg),
                None => self.stats.dropped += 1,
            }
        }
        while let Some(event) = self.validator.poll_event() {
            tracing::info!("{event:?}");
        }
    }

    fn send(&mut self) {
        for (conn, bytes) in std::mem::take(&mut self.out) {
            let Some(stream) = self.conns.get_mut(&conn) else {
                continue;
            };
            if let Err(e) = stream.write_all(&bytes) {
                tracing::debug!("connection {conn}: {e}, closing");
                let _ = stream.shutdown(std::net::Shutdown::Both);
                self.conns.remove(&conn);
            }
        }
    }
}
