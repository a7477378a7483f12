//! Crash safety with real processes: a `meshwork validator` child process is sent a stream of
//! signed orders over its local socket and killed with SIGKILL at seeded random points while it
//! votes, then restarted on the same data directory. After every kill:
//!
//! - every lock whose vote reached us is in the store (read directly from the redb file while the
//!   node is down), and orders whose votes were lost hold their own lock or none;
//! - after the restart, a conflicting order for every input ever voted on is refused with
//!   `Conflicting(the order we saw voted)` — the validator never signs a conflicting order — and
//!   the original orders are voted for again.
//!
//! Seed: `MESHWORK_CRASH_SEED` (default fixed); a failure prints the reproduce line. Every wait is
//! bounded; the socket is 127.0.0.1 with an OS-picked port.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use meshwork::persist::RedbStore;
use meshwork::proto::contract::Fuel;
use meshwork::proto::identity::Identity;
use meshwork::proto::ledger::{
    Amount, BondTerms, Epoch, Genesis, Input, LedgerMsg, LedgerStore, OrderDigest, Output,
    RejectReason, SignedOrder, TransferOrder,
};
use meshwork::proto::wire;

const ROUNDS: usize = 4;
const ORDERS_PER_ROUND: usize = 1_500;
/// The writer pauses 1 ms after this many orders, so a stream spans many batches (and commits).
const ORDERS_PER_MS: usize = 16;
const USERS: usize = 4;
const WAIT: Duration = Duration::from_secs(30);

/// splitmix64: the test's only randomness, from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A running validator process; killed (SIGKILL) when dropped.
struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Node {
    fn start(dir: &Path, genesis: &Path) -> Result<Self, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshwork"))
            .arg("validator")
            .arg("--data-dir")
            .arg(dir)
            .arg("--genesis")
            .arg(genesis)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn the node: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(WAIT)
            .map_err(|_| "the node did not report its address in time".to_string())?;
        let addr = line
            .trim()
            .rsplit("listening on ")
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("unexpected first line: {line:?}"))?;
        Ok(Self { child, addr })
    }

    /// SIGKILL and reap.
    fn kill(mut self) -> Result<(), String> {
        self.child.kill().map_err(|e| format!("kill: {e}"))?;
        self.child.wait().map_err(|e| format!("wait: {e}"))?;
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn frame(msg: &LedgerMsg) -> Vec<u8> {
    let body = msg.encode().expect("encodable");
    let mut f = (body.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(&body);
    f
}

fn read_msg(r: &mut impl Read) -> Result<LedgerMsg, String> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(|e| format!("read: {e}"))?;
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut body).map_err(|e| format!("read: {e}"))?;
    LedgerMsg::decode(&body).map_err(|e| format!("decode: {e}"))
}

/// A connection streaming `orders` from a writer thread; replies are read by the caller.
fn stream(addr: SocketAddr, orders: &[SignedOrder]) -> Result<BufReader<TcpStream>, String> {
    let s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let chunks: Vec<Vec<u8>> = orders
        .chunks(ORDERS_PER_MS)
        .map(|c| {
            c.iter()
                .flat_map(|o| {
                    frame(&LedgerMsg::Order {
                        order: o.clone(),
                        proofs: vec![],
                    })
                })
                .collect()
        })
        .collect();
    // The node may be killed mid-stream: a failed write just ends the writer.
    std::thread::spawn(move || {
        for chunk in chunks {
            if w.write_all(&chunk).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    Ok(BufReader::new(s))
}

struct Ledger {
    genesis: Genesis,
    coins: Vec<Input>,
    users: Vec<Identity>,
}

impl Ledger {
    fn new(validator: &Identity) -> Self {
        let users: Vec<Identity> = (0..USERS)
            .map(|i| Identity::from_seed([10 + i as u8; 32]))
            .collect();
        let coins = (0..ROUNDS * ORDERS_PER_ROUND)
            .map(|i| Output::plain(users[i % USERS].public_key(), Amount(100)))
            .collect();
        let terms = BondTerms::until(Epoch(10));
        let bonds = [(validator.public_key(), Amount(1_000), Fuel(0))];
        let genesis = Genesis::new(coins, &bonds, &terms, 1).expect("genesis");
        let coins = genesis
            .created()
            .map(|(id, output)| Input {
                id,
                output: output.clone(),
            })
            .collect();
        Self {
            genesis,
            coins,
            users,
        }
    }

    fn coin(&self, i: usize) -> Input {
        self.coins[i].clone()
    }

    /// Order `variant` spending coin `i` (different variants conflict).
    fn order(&self, i: usize, variant: u64) -> SignedOrder {
        let payee = self.users[(i + 1 + variant as usize) % USERS].public_key();
        TransferOrder {
            epoch: Epoch(0),
            nonce: variant * 1_000_000 + i as u64,
            inputs: vec![self.coin(i)],
            outputs: vec![Output::plain(payee, Amount(99 - variant.min(50)))],
            fee: Amount(1 + variant.min(50)),
        }
        .signed_by(&[&self.users[i % USERS]])
    }
}

#[test]
fn a_killed_validator_keeps_its_locks_and_never_signs_a_conflict() {
    let seed = std::env::var("MESHWORK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6d65_7368_776f_726b_u64);
    let dir = std::env::temp_dir().join(format!("meshwork-crash-{}-{seed}", std::process::id()));
    let started = Instant::now();
    let result = run(seed, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        panic!(
            "{e}\nreproduce: MESHWORK_CRASH_SEED={seed} cargo test -p meshwork-node --test ledger_crash"
        );
    }
    println!(
        "crash test: {ROUNDS} kills in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn run(seed: u64, dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut rng = Rng(seed);
    let validator = Identity::from_seed([1; 32]);
    std::fs::write(dir.join("validator.key"), validator.to_text()).map_err(|e| e.to_string())?;
    let ledger = Ledger::new(&validator);
    let genesis_path: PathBuf = dir.join("genesis.bin");
    let bytes = wire::encode_body(&ledger.genesis).map_err(|e| e.to_string())?;
    std::fs::write(&genesis_path, bytes).map_err(|e| e.to_string())?;

    // coin → the order we know holds its lock (a vote for it reached us).
    let mut holders: BTreeMap<usize, OrderDigest> = BTreeMap::new();
    // coin → the order sent before a kill whose vote we did not see.
    let mut unacked: BTreeMap<usize, OrderDigest> = BTreeMap::new();
    let mut node = Node::start(dir, &genesis_path)?;
    for (round, variant) in (0..ROUNDS).zip(1u64..) {
        // Stream fresh orders and kill the node after a random number of votes came back
        // (more are in flight or being committed at that instant).
        let coins: Vec<usize> =
            (round * ORDERS_PER_ROUND..(round + 1) * ORDERS_PER_ROUND).collect();
        let orders: Vec<SignedOrder> = coins.iter().map(|&i| ledger.order(i, 0)).collect();
        let by_digest: BTreeMap<OrderDigest, usize> = coins
            .iter()
            .zip(&orders)
            .map(|(&i, o)| (o.order.digest(), i))
            .collect();
        let kill_after = 1 + rng.below(ORDERS_PER_ROUND as u64 - 1) as usize;
        let mut r = stream(node.addr, &orders)?;
        let mut acked = 0;
        while acked < kill_after {
            match read_msg(&mut r)? {
                LedgerMsg::Vote { order, vote } => {
                    vote.verify(&order).map_err(|e| format!("bad vote: {e}"))?;
                    let coin = by_digest
                        .get(&order)
                        .ok_or("a vote for an order not sent")?;
                    holders.insert(*coin, order);
                    acked += 1;
                }
                other => return Err(format!("round {round}: unexpected {other:?}")),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        node.kill()?;
        for (&i, o) in coins.iter().zip(&orders) {
            if !holders.contains_key(&i) {
                unacked.insert(i, o.order.digest());
            }
        }

        // While it is down: the acknowledged locks are on disk.
        let (mut lost_votes, mut never_locked) = (0, 0);
        {
            let store = RedbStore::open(&dir.join("ledger.redb")).map_err(|e| e.to_string())?;
            for (&i, want) in &holders {
                let got = store
                    .output(&ledger.coin(i).id)
                    .map_err(|e| e.to_string())?
                    .lock;
                if got != Some(*want) {
                    return Err(format!(
                        "round {round}: coin {i} voted for {want:?}, on disk {got:?}"
                    ));
                }
            }
            for (&i, own) in &unacked {
                match store
                    .output(&ledger.coin(i).id)
                    .map_err(|e| e.to_string())?
                    .lock
                {
                    None => never_locked += 1,
                    Some(l) if l == *own => lost_votes += 1,
                    Some(l) => return Err(format!("coin {i} locked by a foreign order {l:?}")),
                }
            }
        }

        // Restart on the same directory and try to spend every coin again, differently.
        node = Node::start(dir, &genesis_path)?;
        let seen = verify_after_restart(&ledger, &node, &mut holders, &mut unacked, variant)?;
        println!(
            "round {round}: killed after {acked} of {ORDERS_PER_ROUND} votes read; {lost_votes} locked but vote unread, {never_locked} never locked; after restart {} conflicting orders refused, {} lock holders voted again",
            seen.0, seen.1
        );
    }
    node.kill()
}

/// Send a conflicting order (`variant`) for every coin ever sent, then the originals of the
/// voted coins. Returns (conflicts refused, originals re-voted).
fn verify_after_restart(
    ledger: &Ledger,
    node: &Node,
    holders: &mut BTreeMap<usize, OrderDigest>,
    unacked: &mut BTreeMap<usize, OrderDigest>,
    variant: u64,
) -> Result<(usize, usize), String> {
    let coins: Vec<usize> = holders.keys().chain(unacked.keys()).copied().collect();
    let conflicts: Vec<SignedOrder> = coins.iter().map(|&i| ledger.order(i, variant)).collect();
    let by_digest: BTreeMap<OrderDigest, usize> = coins
        .iter()
        .zip(&conflicts)
        .map(|(&i, o)| (o.order.digest(), i))
        .collect();
    let mut r = stream(node.addr, &conflicts)?;
    let mut refused = 0;
    for _ in 0..conflicts.len() {
        let msg = read_msg(&mut r)?;
        let (digest, verdict) = match &msg {
            LedgerMsg::Vote { order, .. } => (*order, None),
            LedgerMsg::Reject { order, reason } => (*order, Some(*reason)),
            other => return Err(format!("unexpected {other:?}")),
        };
        let coin = *by_digest
            .get(&digest)
            .ok_or("a reply for an order not sent")?;
        match (holders.get(&coin), unacked.get(&coin), verdict) {
            (Some(h), _, Some(RejectReason::Conflicting(l))) if l == *h => refused += 1,
            (Some(h), _, v) => {
                return Err(format!(
                    "coin {coin}: voted for {h:?} before the kill, now answers {v:?} to a conflicting order"
                ));
            }
            (None, Some(own), Some(RejectReason::Conflicting(l))) if l == *own => {
                // Its lock was committed before the kill, its vote never read: still held.
                holders.insert(coin, *own);
                unacked.remove(&coin);
                refused += 1;
            }
            (None, Some(_), None) => {
                // Never locked before the kill: the conflicting order now holds it.
                holders.insert(coin, digest);
                unacked.remove(&coin);
            }
            (None, own, v) => return Err(format!("coin {coin} (sent {own:?}): answered {v:?}")),
        }
    }
    // The same order as the lock holder is voted for again (idempotent, durable vote).
    let originals: Vec<(usize, OrderDigest)> = holders.iter().map(|(i, d)| (*i, *d)).collect();
    let orders: Vec<SignedOrder> = originals
        .iter()
        .map(|(i, d)| {
            (0..=variant)
                .map(|v| ledger.order(*i, v))
                .find(|o| o.order.digest() == *d)
                .expect("every holder is one of the variants sent")
        })
        .collect();
    let mut r = stream(node.addr, &orders)?;
    for _ in 0..orders.len() {
        match read_msg(&mut r)? {
            LedgerMsg::Vote { order, vote } => {
                vote.verify(&order).map_err(|e| format!("bad vote: {e}"))?;
            }
            other => return Err(format!("the lock holder was not voted again: {other:?}")),
        }
    }
    Ok((refused, orders.len()))
}
