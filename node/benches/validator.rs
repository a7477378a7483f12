//! The validator node end to end: a `meshwork validator` child process, orders over its local
//! socket, every vote after its lock's fsync'd redb commit. Prints orders/s through the node for
//! a stream (batched: one commit and one vote signature per batch) and the round trip of one
//! order at a time (one commit per order), so the gain from batching is visible.
//!
//! ```text
//! cargo bench -p meshwork-node --bench validator
//! ```

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meshwork::proto::contract::Fuel;
use meshwork::proto::identity::Identity;
use meshwork::proto::ledger::{
    Amount, BondTerms, Epoch, Genesis, Input, LedgerMsg, Output, SignedOrder, TransferOrder,
};
use meshwork::proto::wire;

const STREAM_ORDERS: usize = 16_000;
const SEQUENTIAL_ORDERS: usize = 200;

fn frame(msg: &LedgerMsg) -> Vec<u8> {
    let body = msg.encode().expect("encodable");
    let mut f = u32::try_from(body.len())
        .expect("small")
        .to_le_bytes()
        .to_vec();
    f.extend_from_slice(&body);
    f
}

fn read_msg(r: &mut impl Read) -> LedgerMsg {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).expect("a reply");
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut body).expect("a reply");
    LedgerMsg::decode(&body).expect("a ledger message")
}

fn order_frame(o: &SignedOrder) -> Vec<u8> {
    frame(&LedgerMsg::Order {
        order: o.clone(),
        proofs: vec![],
    })
}

fn main() {
    let dir = std::env::temp_dir().join(format!("meshwork-validator-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let validator = Identity::from_seed([1; 32]);
    std::fs::write(dir.join("validator.key"), validator.to_text()).expect("key");
    let users: Vec<Identity> = (0..8u8)
        .map(|i| Identity::from_seed([10 + i; 32]))
        .collect();
    let n = STREAM_ORDERS + SEQUENTIAL_ORDERS;
    let coins = (0..n)
        .map(|i| Output::plain(users[i % users.len()].public_key(), Amount(100)))
        .collect();
    let terms = BondTerms::until(Epoch(10));
    let bonds = [(validator.public_key(), Amount(1_000), Fuel(0))];
    let genesis = Genesis::new(coins, &bonds, &terms, 1).expect("genesis");
    std::fs::write(
        dir.join("genesis.bin"),
        wire::encode_body(&genesis).expect("genesis fits a message"),
    )
    .expect("genesis file");
    let orders: Vec<SignedOrder> = genesis
        .created()
        .take(n)
        .enumerate()
        .map(|(i, (id, output))| {
            TransferOrder {
                epoch: Epoch(0),
                nonce: i as u64,
                inputs: vec![Input {
                    id,
                    output: output.clone(),
                }],
                outputs: vec![Output::plain(
                    users[(i + 1) % users.len()].public_key(),
                    Amount(99),
                )],
                fee: Amount(1),
            }
            .signed_by(&[&users[i % users.len()]])
        })
        .collect();

    let mut child = start(&dir);
    let addr = address(&mut child);
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));

    // A stream: everything queued while a batch is committed forms the next batch.
    let bytes: Vec<u8> = orders[..STREAM_ORDERS]
        .iter()
        .flat_map(order_frame)
        .collect();
    let mut w = s.try_clone().expect("clone");
    let t0 = Instant::now();
    let writer = std::thread::spawn(move || w.write_all(&bytes).expect("stream"));
    let mut batches = BTreeSet::new();
    let mut votes = 0;
    for _ in 0..STREAM_ORDERS {
        if let LedgerMsg::Vote { vote, .. } = read_msg(&mut r) {
            votes += 1;
            batches.insert(vote.signature.0);
        }
    }
    let stream_s = t0.elapsed().as_secs_f64();
    writer.join().expect("writer");
    assert_eq!(
        votes, STREAM_ORDERS,
        "every streamed order was voted for, none rejected"
    );

    // One at a time: every order waits for its own commit.
    let mut w = s;
    let t1 = Instant::now();
    for o in &orders[STREAM_ORDERS..] {
        w.write_all(&order_frame(o)).expect("send");
        assert!(matches!(read_msg(&mut r), LedgerMsg::Vote { .. }));
    }
    let sequential_s = t1.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    println!("validator node (child process, local TCP, redb commit fsync'd before every reply)");
    println!(
        "  stream of {STREAM_ORDERS} orders: {:>8.0} orders/s ({votes} votes, {} batches = commits, {:.0} orders per commit)",
        STREAM_ORDERS as f64 / stream_s,
        batches.len(),
        votes as f64 / batches.len().max(1) as f64
    );
    println!(
        "  one order at a time ({SEQUENTIAL_ORDERS}): {:>8.0} orders/s, {:.2} ms per order round trip (one commit each)",
        SEQUENTIAL_ORDERS as f64 / sequential_s,
        sequential_s * 1e3 / SEQUENTIAL_ORDERS as f64
    );
}

fn start(dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_meshwork"))
        .arg("validator")
        .arg("--data-dir")
        .arg(dir)
        .arg("--genesis")
        .arg(dir.join("genesis.bin"))
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the node")
}

fn address(child: &mut Child) -> SocketAddr {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the node's first line");
    line.trim()
        .rsplit("listening on ")
        .next()
        .and_then(|a| a.parse().ok())
        .expect("an address")
}
