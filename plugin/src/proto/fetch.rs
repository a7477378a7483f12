//! `fetch()`: request/response over the mesh, where the closest, fastest peers earn and wrong
//! answers cost collateral. Sans-IO, like every core: messages in through
//! [`Fetch::handle_message`], sends out through [`Fetch::poll_send`], time passed in.
//!
//! # Protocol
//!
//! 1. **Request.** The requester signs a [`RequestHead`] (target URL, method, headers, body,
//!    `fee_max`, `collateral_min`, `replicas`, ttl and a certified proof of its ticket escrow)
//!    and routes it toward the target's key ([`Target::key`]): a contract's id, a block's hash,
//!    or exactly one peer.
//! 2. **Competition.** The peer closest to the key receives it first. If the request allows
//!    `replicas > 1`, that peer forwards it once to its `replicas − 1` linked peers closest to
//!    the key ([`Outgoing::Forward`]); a forwarded request is never forwarded again. So at most
//!    `replicas` peers (≤ [`REPLICAS_MAX`]) work on one request: duplicate work is bounded.
//! 3. **Answer.** Each peer that can serve it (holds the contract's state, the block, or a
//!    handler for the path), whose price is ≤ `fee_max` and whose bond covers
//!    `collateral_min`, signs a [`ResponseHead`]: status, body, price, a commitment to its
//!    ticket secret, a certified proof of its bond, and for contracts the code, prior root,
//!    next root, fuel and tick a referee needs to re-execute it.
//! 4. **Choice.** The requester accepts the **first valid answer** (signature, request digest,
//!    price ≤ `fee_max`, bond proof checked against the committee, owner = responder, amount ≥
//!    `collateral_min`, terms naming the audit committee; a block's bytes must hash to the
//!    requested hash). Arrival order is the rule because routing reaches the closest peer
//!    first and the fastest answer arrives first: the closest and most efficient peers win the
//!    fee. Later answers are ignored and unpaid (a `PUT` instead pays each of up to `replicas`
//!    storers, since storage wants copies).
//! 5. **Payment** is a lottery ticket ([`crate::proto::ledger::Ticket`]): face value
//!    [`FetchConfig::ticket_face`], win probability `price / face`, so its expected value is the
//!    price; the responder committed to its secret in the signed response before it saw the
//!    payer's randomness, so neither side can bias the draw. Only winning tickets reach the
//!    ledger, so paid requests cost `1,000 × price / face` ledger operations per 1,000
//!    (fee 10, face 1,000 → 10) instead of 1,000 payments — see ARCHITECTURE.md for why
//!    tickets rather than payment channels.
//! 6. **Audit.** The requester sends a sampled share ([`FetchConfig::audit_ppm`]) of accepted
//!    contract answers, and every answer it can already see is wrong (a block that does not
//!    hash), to the audit committee ([`FetchConfig::referees`]). Each referee re-executes the
//!    contract call on its own replica from the claimed prior root (or hashes the block) and,
//!    if the answer is wrong, signs a [`Verdict`] against the responder's bond naming the
//!    requester and the referees as beneficiaries. `referee_quorum` signatures make a verdict
//!    the ledger accepts to forfeit the bond ([`FetchEvent::Slashed`]); the requester is told
//!    to discard the result ([`FetchEvent::Retracted`]).
//!
//! # Economics
//!
//! A lie on a contract call is caught with probability `audit_ppm / 10⁶` and then costs the
//! whole bond; it gains at most the fee. With the defaults (10 % audits, requesters asking
//! for collateral ≥ 100 × `fee_max`, see [`collateral_for`]) the expected penalty of one lie is
//! ≥ 0.1 × 100 × fee = 10 × fee, so lying has negative expected value
//! ([`expected_penalty_ratio`]). Wrong blocks are caught every time (the requester hashes them).
//!
//! # Limits
//!
//! Every table is bounded: pending requests ([`FetchConfig::pending_max`]), answers awaiting
//! payment, recently served responses, audits in flight, verified proofs, rate-limiter keys.
//! Each requester key has a token bucket ([`FetchConfig::requests_per_s`]); a requester with
//! more than [`FetchConfig::unpaid_max`] unpaid answers is refused until it pays.

mod limit;
pub mod msg;
pub mod service;
mod url;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_core::RngCore;
use sha2::{Digest, Sha256};

pub use limit::RateLimiter;
pub use msg::{
    AuditOutcome, FetchMsg, Method, Proof, REPLICAS_MAX, RequestHead, ResponseHead, SignedRequest,
    SignedResponse,
};
pub use service::{BlockStore, Evaluation};
pub use url::Target;

use crate::proto::contract::{ContractHost, ContractId, Tick};
use crate::proto::identity::{Identity, PeerId, PublicKey};
use crate::proto::ledger::{
    Amount, BondTerms, Committee, Epoch, LedgerError, Output, OutputId, OutputProof, SignedTicket,
    Ticket, Verdict, WinningTicket, win_threshold_for,
};
use crate::proto::overlay::Overlay;
use crate::proto::overlay::drbg::Drbg;

/// The one-byte service tag in front of fetch messages in a routed overlay payload.
pub const SERVICE_FETCH: u8 = 1;

/// A request's handle, unique per requester.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Errors of the fetch boundary: requests we refuse to send, and messages from peers we drop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Not a valid `mesh://` URL.
    #[error("bad URL: {0}")]
    BadUrl(&'static str),
    /// Structurally invalid.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// Over a size bound.
    #[error("too large: {0}")]
    TooLarge(&'static str),
    /// A signature did not verify.
    #[error("bad {0} signature")]
    BadSignature(&'static str),
    /// A bond or escrow proof is forged, of the wrong kind, or too small.
    #[error("bad proof: {0}")]
    BadProof(&'static str),
    /// The answer asks more than the request allows.
    #[error("price {price} above the request's maximum {max}")]
    PriceAboveMax {
        /// Asked.
        price: Amount,
        /// Allowed.
        max: Amount,
    },
    /// The body does not match what was asked (a block that does not hash to its address).
    #[error("wrong content: {0}")]
    WrongContent(&'static str),
    /// A paid request without an escrow to draw tickets on.
    #[error("no escrow configured: paid requests need one")]
    NoEscrow,
    /// Too many requests in flight.
    #[error("too many requests in flight")]
    Busy,
    /// No valid answer in time.
    #[error("timed out after {attempts} attempts")]
    Timeout {
        /// Times the request was sent.
        attempts: u8,
    },
    /// No valid answer in time, and a peer said why it would not serve.
    #[error("refused: {0:?}")]
    Refused(RefusalReason),
    /// A payment we cannot accept.
    #[error("bad payment: {0}")]
    BadPayment(&'static str),
    /// A ledger object failed its checks.
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// The message names a request we do not know (late, duplicate or unsolicited).
    #[error("unknown request")]
    Unknown,
}

/// Why a peer would not serve a request (sent unsigned in [`FetchMsg::Refused`]; advisory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// The requester is over its rate.
    RateLimited = 1,
    /// `fee_max` is below the responder's price.
    Underpaid = 2,
    /// No valid escrow, or too many answers left unpaid.
    Unpaid = 3,
    /// The responder has no bond covering `collateral_min`.
    NoBond = 4,
    /// The responder does not hold what was asked.
    NotHere = 5,
    /// The responder is out of storage or capacity.
    Full = 6,
}

impl RefusalReason {
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Self::RateLimited,
            2 => Self::Underpaid,
            3 => Self::Unpaid,
            4 => Self::NoBond,
            5 => Self::NotHere,
            6 => Self::Full,
            _ => return None,
        })
    }
}

/// A request as the application writes it (mirrors the browser's `fetch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `mesh://…` target.
    pub target: Target,
    /// Method.
    pub method: Method,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// The most we pay for one answer.
    pub fee_max: Amount,
    /// The least bond a responder must have posted (see [`collateral_for`]).
    pub collateral_min: Amount,
    /// Give up after this long.
    pub timeout_ms: u32,
    /// Peers that may compete (1..=4; 2 by default for contracts and blocks).
    pub replicas: u8,
}

impl Request {
    /// A `GET` of `url` with no fee, no collateral, 10 s timeout.
    pub fn get(url: &str) -> Result<Self, FetchError> {
        let target = Target::parse(url)?;
        let replicas = if target.is_exact() { 1 } else { 2 };
        Ok(Self {
            target,
            method: Method::Get,
            headers: Vec::new(),
            body: Vec::new(),
            fee_max: Amount::ZERO,
            collateral_min: Amount::ZERO,
            timeout_ms: 10_000,
            replicas,
        })
    }

    /// Same, with `method` and `body`.
    pub fn with_body(mut self, method: Method, body: Vec<u8>) -> Self {
        self.method = method;
        self.body = body;
        self
    }

    /// Pay up to `fee_max`, and require the collateral that makes lying unprofitable for it.
    pub fn paying(mut self, fee_max: Amount) -> Self {
        self.fee_max = fee_max;
        self.collateral_min = collateral_for(fee_max);
        self
    }
}

/// The evidence that makes an answer disputable: both signed halves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseEvidence {
    /// The request.
    pub request: SignedRequest,
    /// The answer.
    pub response: SignedResponse,
}

/// An accepted answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP-like status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Who answered.
    pub responder: PublicKey,
    /// Its bond (id and amount), if it posted one.
    pub bond: Option<(OutputId, Amount)>,
    /// What we pay (in expectation) for it.
    pub price: Amount,
    /// Whether we sent it to the referees.
    pub audited: bool,
    /// The signed request and response, to dispute it later.
    pub evidence: Box<ResponseEvidence>,
}

/// A request for a custom path, for the application to answer with [`Fetch::respond`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// Pass back to [`Fetch::respond`].
    pub token: u64,
    /// Who asks.
    pub requester: PublicKey,
    /// The path the handler was registered under (and anything after it).
    pub path: String,
    /// Method.
    pub method: Method,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// What the core tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchEvent {
    /// A request finished.
    Completed {
        /// Which.
        id: RequestId,
        /// The accepted answer, or why there is none.
        result: Result<Response, FetchError>,
    },
    /// A custom-path request to answer with [`Fetch::respond`].
    Incoming(Incoming),
    /// One of our tickets won: redeem it on the ledger
    /// ([`crate::proto::ledger::SignedOrder::redeem`]) against the escrow.
    TicketWon {
        /// The ticket and our secret.
        winning: Box<WinningTicket>,
        /// The requester's escrow as it proved it.
        escrow: Box<OutputProof>,
    },
    /// A payment arrived for an answer of ours (the ticket's expected value is `price`).
    Paid {
        /// Who paid.
        payer: PublicKey,
        /// Its expected value.
        price: Amount,
    },
    /// A referee quorum ruled an answer wrong: submit the verdict as a forfeit order.
    Slashed {
        /// Our request it answered.
        id: RequestId,
        /// The lying responder.
        responder: PublicKey,
        /// Evidence the ledger accepts against its bond.
        verdict: Box<Verdict>,
    },
    /// A result already delivered in [`FetchEvent::Completed`] was proven wrong: discard it.
    Retracted {
        /// Which.
        id: RequestId,
    },
}

/// Where a message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Route toward `key` (to the closest peer), or exactly to it.
    Route {
        /// The key or peer.
        key: PeerId,
        /// Exactly that peer.
        exact: bool,
        /// The payload, service tag included.
        payload: Vec<u8>,
    },
    /// Send exactly to each of our `count` linked peers closest to `key` (a replica forward);
    /// the glue picks them ([`crate::proto::overlay::Overlay::closest_linked`]).
    Forward {
        /// The key.
        key: PeerId,
        /// How many peers.
        count: u8,
        /// A peer not to pick (the requester: it does not answer its own request).
        exclude: Option<PeerId>,
        /// The payload, service tag included.
        payload: Vec<u8>,
    },
}

impl Outgoing {
    /// Hand this send to `overlay` (a `Forward` goes exactly to each picked linked peer).
    pub fn send_on(self, overlay: &mut Overlay, now_ms: u64) {
        match self {
            Outgoing::Route {
                key,
                exact,
                payload,
            } => {
                overlay.send(now_ms, key, exact, payload);
            }
            Outgoing::Forward {
                key,
                count,
                exclude,
                payload,
            } => {
                for p in overlay.closest_linked(&key, usize::from(count), exclude.as_ref()) {
                    overlay.send(now_ms, p, true, payload.clone());
                }
            }
        }
    }
}

/// How a simulated or test responder misbehaves (test double; honest peers use `None`).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    /// Honest.
    #[default]
    None,
    /// Answers contract calls with a wrong body and blocks with wrong bytes.
    Lie,
    /// Answers correctly but `delay_ms` late (the glue delays its sends).
    Late,
}

/// Parameters of a fetch core.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Whether we answer requests for others.
    pub serve: bool,
    /// What we ask per answer.
    pub price: Amount,
    /// Our bond, if we posted one (answers to requests asking for collateral need it).
    pub bond: Option<OutputProof>,
    /// Our ticket escrow, if we pay for requests.
    pub escrow: Option<OutputProof>,
    /// Face value of the tickets we draw (win probability = price / face).
    pub ticket_face: Amount,
    /// Last epoch our tickets can be redeemed in.
    pub ticket_expiry: Epoch,
    /// The audit committee: referees whose verdicts forfeit responder bonds.
    pub referees: Vec<PublicKey>,
    /// Verdict signatures needed.
    pub referee_quorum: u16,
    /// Share of accepted contract answers audited, in parts per million.
    pub audit_ppm: u32,
    /// The ledger committee bond and escrow proofs are checked against (`None`: only free,
    /// unbonded requests are possible).
    pub committee: Option<Committee>,
    /// The current epoch (bonds must not expire before it).
    pub epoch: Epoch,
    /// Requests per second we serve from one requester (sustained).
    pub requests_per_s: u32,
    /// Burst allowance per requester.
    pub requests_burst: u32,
    /// Answers a requester may leave unpaid before we refuse it.
    pub unpaid_max: u32,
    /// Our requests in flight.
    pub pending_max: usize,
    /// Re-send an unanswered request after this long (at most 3 sends).
    pub attempt_ms: u32,
    /// Bytes of blocks we store.
    pub blocks_bytes_max: usize,
    /// How long an audit waits for referees.
    pub audit_timeout_ms: u32,
    /// Every this long, a holder sends each block it holds (up to 32 per round) to its
    /// `block_replicas − 1` linked peers closest to the block's hash.
    pub replicate_ms: u32,
    /// Copies of a block the mesh keeps.
    pub block_replicas: u8,
    #[doc(hidden)]
    pub fault: Fault,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            serve: true,
            price: Amount::ZERO,
            bond: None,
            escrow: None,
            ticket_face: Amount(1_000),
            ticket_expiry: Epoch(u64::MAX),
            referees: Vec::new(),
            referee_quorum: 0,
            audit_ppm: DEFAULT_AUDIT_PPM,
            committee: None,
            epoch: Epoch(0),
            requests_per_s: 50,
            requests_burst: 100,
            unpaid_max: 16,
            pending_max: 256,
            attempt_ms: 1_500,
            blocks_bytes_max: 64 << 20,
            audit_timeout_ms: 10_000,
            replicate_ms: 30_000,
            block_replicas: 3,
            fault: Fault::None,
        }
    }
}

/// Default audit rate: 10 % of accepted contract answers.
pub const DEFAULT_AUDIT_PPM: u32 = 100_000;
/// Collateral a requester asks per unit of fee by default.
pub const COLLATERAL_PER_FEE: u64 = 100;

/// The collateral that makes a lie unprofitable at the default audit rate:
/// `COLLATERAL_PER_FEE × fee` (saturating).
pub fn collateral_for(fee_max: Amount) -> Amount {
    Amount(fee_max.0.saturating_mul(COLLATERAL_PER_FEE))
}

/// Expected penalty of one lie divided by its fee, × 1000 (integer): `audit rate × bond / fee`.
/// ≥ 10,000 means the expected penalty is at least ten times the fee.
pub fn expected_penalty_ratio(fee: Amount, bond: Amount, audit_ppm: u32) -> u64 {
    if fee.0 == 0 {
        return u64::MAX;
    }
    let penalty_milli = u128::from(bond.0) * u128::from(audit_ppm) / 1_000; // bond × rate × 1000
    u64::try_from(penalty_milli / u128::from(fee.0)).unwrap_or(u64::MAX)
}

const SENDS_MAX: u8 = 3;
const SERVED_MAX: usize = 256;
const AWAITING_PAY_MAX: usize = 1024;
const AUDITS_MAX: usize = 256;
const PROOFS_MAX: usize = 1024;
const INCOMING_MAX: usize = 64;
const UNPAID_KEYS_MAX: usize = 4096;

struct Pending {
    id: RequestId,
    request: SignedRequest,
    deadline_ms: u64,
    next_send_ms: u64,
    sends: u8,
    refusal: Option<RefusalReason>,
    /// For `PUT`: storers paid so far; for the rest: whether an answer was accepted.
    accepted: Vec<PublicKey>,
    /// Our ticket randomness for this request.
    payer_rand: [u8; 32],
}

struct Awaiting {
    requester: PublicKey,
    secret: [u8; 32],
    price: Amount,
    escrow: Option<Box<OutputProof>>,
}

struct Audit {
    id: RequestId,
    responder: PublicKey,
    bond: Option<OutputId>,
    case: [u8; 32],
    beneficiaries: Vec<PublicKey>,
    wrong: BTreeMap<PublicKey, crate::proto::identity::Signature>,
    answered: BTreeSet<PublicKey>,
    deadline_ms: u64,
    delivered: bool,
}

/// Counters, for diagnostics, the simulator and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Requests we answered.
    pub served: u64,
    /// Requests we refused.
    pub refused: u64,
    /// Answers that lost the race or came late (ignored, unpaid).
    pub ignored: u64,
    /// Invalid messages dropped.
    pub dropped: u64,
    /// Tickets received.
    pub tickets_in: u64,
    /// Tickets of ours that won.
    pub tickets_won: u64,
    /// Tickets we drew.
    pub tickets_out: u64,
    /// Audits we started.
    pub audits: u64,
    /// Audits we answered as a referee.
    pub refereed: u64,
}

/// One peer's fetch core: requester, responder and referee in one.
pub struct Fetch {
    identity: Identity,
    me: PeerId,
    cfg: FetchConfig,
    rng: Drbg,
    next_id: u64,
    next_token: u64,
    pending: BTreeMap<[u8; 32], Pending>,
    by_id: BTreeMap<RequestId, [u8; 32]>,
    served: VecDeque<([u8; 32], Vec<u8>)>,
    awaiting: BTreeMap<[u8; 32], Awaiting>,
    awaiting_order: VecDeque<[u8; 32]>,
    unpaid: BTreeMap<PublicKey, u32>,
    audits: BTreeMap<[u8; 32], Audit>,
    proofs: BTreeMap<[u8; 32], (OutputId, Output)>,
    limiter: RateLimiter<PublicKey>,
    contracts: BTreeMap<ContractId, ContractHost>,
    tick: Tick,
    blocks: BlockStore,
    paths: BTreeSet<String>,
    incoming: BTreeMap<u64, (SignedRequest, [u8; 32])>,
    next_replicate_ms: u64,
    replicate_cursor: Option<[u8; 32]>,
    out: VecDeque<Outgoing>,
    events: VecDeque<FetchEvent>,
    stats: FetchStats,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetch")
            .field("me", &self.me)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Fetch {
    /// A core for `identity` with `cfg`; `seed` feeds its randomness (ticket secrets, audit
    /// sampling, nonces).
    pub fn new(identity: Identity, cfg: FetchConfig, seed: [u8; 32]) -> Self {
        let limiter = RateLimiter::new(cfg.requests_per_s, cfg.requests_burst, 4096);
        let blocks = BlockStore::new(cfg.blocks_bytes_max);
        let me = identity.peer_id();
        let mut rng = Drbg::new(seed);
        Self {
            identity,
            me,
            next_id: rng.next_u64() >> 16,
            rng,
            cfg,
            next_token: 1,
            pending: BTreeMap::new(),
            by_id: BTreeMap::new(),
            served: VecDeque::new(),
            awaiting: BTreeMap::new(),
            awaiting_order: VecDeque::new(),
            unpaid: BTreeMap::new(),
            audits: BTreeMap::new(),
            proofs: BTreeMap::new(),
            limiter,
            contracts: BTreeMap::new(),
            tick: Tick(0),
            blocks,
            paths: BTreeSet::new(),
            incoming: BTreeMap::new(),
            next_replicate_ms: 0,
            replicate_cursor: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: FetchStats::default(),
        }
    }

    /// Our key.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// The configuration (mutable: bonds, escrows and epochs change while running).
    pub fn config_mut(&mut self) -> &mut FetchConfig {
        &mut self.cfg
    }

    /// The configuration.
    pub fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &FetchStats {
        &self.stats
    }

    /// Serve (and referee) `contract` from `host`, which must hold it. The host is kept as is:
    /// evaluations run on forks. Replaces an earlier host for the same contract.
    pub fn serve_contract(&mut self, contract: ContractId, host: ContractHost) {
        assert!(
            host.code_of(&contract).is_ok(),
            "the host must hold the contract"
        );
        self.contracts.insert(contract, host);
    }

    /// The tick evaluations run at.
    pub fn set_tick(&mut self, tick: Tick) {
        self.tick = tick;
    }

    /// Answer `mesh://peer/<us>/<path>…` requests: they arrive as [`FetchEvent::Incoming`].
    pub fn serve_path(&mut self, path: &str) {
        self.paths.insert(path.to_owned());
    }

    /// Our block store.
    pub fn blocks(&self) -> &BlockStore {
        &self.blocks
    }

    /// Store a block locally (e.g. one we wrote); returns its hash.
    pub fn store_block(&mut self, bytes: Vec<u8>) -> Option<[u8; 32]> {
        self.blocks.put(bytes)
    }

    /// Requests in flight.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    // ----- requester ---------------------------------------------------------------------

    /// Start a request. Its outcome arrives as [`FetchEvent::Completed`].
    pub fn fetch(&mut self, now_ms: u64, req: Request) -> Result<RequestId, FetchError> {
        if self.pending.len() >= self.cfg.pending_max {
            return Err(FetchError::Busy);
        }
        let escrow = if req.fee_max > Amount::ZERO {
            Some(Box::new(
                self.cfg.escrow.clone().ok_or(FetchError::NoEscrow)?,
            ))
        } else {
            None
        };
        let replicas = if req.target.is_exact() {
            1
        } else {
            req.replicas
        };
        let head = RequestHead {
            id: self.next_id,
            requester: self.identity.public_key(),
            target: req.target,
            method: req.method,
            headers: req.headers,
            body: req.body,
            fee_max: req.fee_max,
            collateral_min: req.collateral_min,
            replicas,
            ttl_ms: req.timeout_ms,
            escrow,
        };
        head.check()?;
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let (request, digest) = head.sign_digest(&self.identity);
        let mut payer_rand = [0u8; 32];
        self.rng.fill_bytes(&mut payer_rand);
        self.send_request(&request);
        self.pending.insert(
            digest,
            Pending {
                id,
                request,
                deadline_ms: now_ms + u64::from(req.timeout_ms),
                next_send_ms: now_ms + u64::from(self.cfg.attempt_ms),
                sends: 1,
                refusal: None,
                accepted: Vec::new(),
                payer_rand,
            },
        );
        self.by_id.insert(id, digest);
        Ok(id)
    }

    fn send_request(&mut self, request: &SignedRequest) {
        let msg = FetchMsg::Request {
            request: Box::new(request.clone()),
            forwarded: false,
        };
        self.out.push_back(Outgoing::Route {
            key: request.head.target.key(),
            exact: request.head.target.is_exact(),
            payload: tagged(&msg),
        });
    }

    fn on_response(&mut self, now_ms: u64, response: SignedResponse) -> Result<(), FetchError> {
        let rdigest = response.verify()?;
        let qdigest = response.head.request;
        let Some(p) = self.pending.get(&qdigest) else {
            self.stats.ignored += 1;
            return Err(FetchError::Unknown);
        };
        let request = p.request.clone();
        let (id, payer_rand) = (p.id, p.payer_rand);
        let head = &request.head;
        let is_put = head.method == Method::Put;
        let responder = response.head.responder;
        if p.accepted.contains(&responder)
            || (!is_put && !p.accepted.is_empty())
            || (is_put && p.accepted.len() >= usize::from(head.replicas))
        {
            self.stats.ignored += 1;
            return Ok(());
        }
        if response.head.price > head.fee_max {
            return Err(FetchError::PriceAboveMax {
                price: response.head.price,
                max: head.fee_max,
            });
        }
        let bond = match &response.head.bond {
            Some(proof) => Some(self.check_bond(proof, &responder)?),
            None => None,
        };
        if head.collateral_min > Amount::ZERO
            && bond.is_none_or(|(_, amount)| amount < head.collateral_min)
        {
            return Err(FetchError::BadProof("bond below the requested collateral"));
        }
        // Content addressing: a block must hash to its address. A wrong one is a provable lie:
        // dispute it at once and keep waiting for an honest answer.
        if let (Target::Block { hash }, Method::Get, 200) =
            (&head.target, head.method, response.head.status)
            && Sha256::digest(&response.head.body).as_slice() != hash
        {
            self.start_audit(now_ms, id, &request, &response, rdigest, false);
            return Err(FetchError::WrongContent(
                "block does not hash to its address",
            ));
        }
        let contract_answer = matches!(response.head.proof, Proof::Contract { .. });
        let p = self.pending.get_mut(&qdigest).expect("checked above");
        p.accepted.push(responder);
        let first = p.accepted.len() == 1;
        let done = !is_put || p.accepted.len() >= usize::from(request.head.replicas);
        if response.head.price > Amount::ZERO {
            self.pay(&response, payer_rand)?;
        }
        let audited = contract_answer && (self.rng.next_u32() % 1_000_000) < self.cfg.audit_ppm;
        if audited {
            self.start_audit(now_ms, id, &request, &response, rdigest, true);
        }
        if done {
            self.finish(&qdigest);
        }
        // A PUT completes on its first storer; later storers are paid silently.
        if first {
            self.events.push_back(FetchEvent::Completed {
                id,
                result: Ok(Response {
                    status: response.head.status,
                    headers: response.head.headers.clone(),
                    body: response.head.body.clone(),
                    responder,
                    bond,
                    price: response.head.price,
                    audited,
                    evidence: Box::new(ResponseEvidence { request, response }),
                }),
            });
        }
        Ok(())
    }

    fn check_bond(
        &mut self,
        proof: &OutputProof,
        owner: &PublicKey,
    ) -> Result<(OutputId, Amount), FetchError> {
        let (id, output) = self.verified_output(proof)?;
        if output.owner != *owner {
            return Err(FetchError::BadProof("bond owned by someone else"));
        }
        let terms = output
            .bond
            .as_ref()
            .ok_or(FetchError::BadProof("not a bond"))?;
        if terms.expiry < self.cfg.epoch {
            return Err(FetchError::BadProof("bond expired"));
        }
        if !self.bond_terms_ok(terms) {
            return Err(FetchError::BadProof(
                "bond terms do not name the audit committee",
            ));
        }
        Ok((id, output.amount))
    }

    /// A responder bond must be forfeitable by our audit committee's verdicts, to beneficiaries
    /// the verdict names.
    fn bond_terms_ok(&self, terms: &BondTerms) -> bool {
        let listed: BTreeSet<_> = terms.referees.iter().collect();
        let ours: BTreeSet<_> = self.cfg.referees.iter().collect();
        terms.beneficiaries.is_empty()
            && terms.lottery.is_none()
            && listed == ours
            && terms.referee_quorum == self.cfg.referee_quorum
            && self.cfg.referee_quorum > 0
    }

    /// Check a certified output once, then remember it (bounded).
    fn verified_output(&mut self, proof: &OutputProof) -> Result<(OutputId, Output), FetchError> {
        let key: [u8; 32] = {
            let (id, _) = proof.output()?;
            id.0
        };
        if let Some(v) = self.proofs.get(&key) {
            // The cached entry is keyed by output id, which commits to the certified order's
            // digest; the proof must still carry the same output.
            let (_, out) = proof.output()?;
            if *out == v.1 {
                return Ok(v.clone());
            }
        }
        let committee = self
            .cfg
            .committee
            .as_ref()
            .ok_or(FetchError::BadProof("no committee to check proofs against"))?;
        let v = proof.verify(committee)?;
        if self.proofs.len() >= PROOFS_MAX {
            self.proofs.pop_first();
        }
        self.proofs.insert(key, v.clone());
        Ok(v)
    }

    fn pay(
        &mut self,
        response: &SignedResponse,
        payer_rand_base: [u8; 32],
    ) -> Result<(), FetchError> {
        let escrow = self.cfg.escrow.as_ref().ok_or(FetchError::NoEscrow)?;
        let (_, out) = escrow.output()?;
        let (root, escrow_expiry) = out
            .bond
            .as_ref()
            .and_then(|t| t.lottery.as_ref().map(|l| (l.root, t.expiry)))
            .ok_or(FetchError::BadProof("our escrow has no lottery terms"))?;
        let face = self.cfg.ticket_face.max(response.head.price);
        let win_threshold = win_threshold_for(response.head.price, face)?;
        // Distinct randomness per payee of one request.
        let mut h = Sha256::new();
        h.update(payer_rand_base);
        h.update(response.head.responder.0);
        let ticket = Ticket {
            escrow_root: root,
            payer: self.identity.public_key(),
            payee: response.head.responder,
            face,
            win_threshold,
            payee_commit: response.head.payee_commit,
            payer_rand: h.finalize().into(),
            // A ticket cannot outlive the escrow it is drawn on.
            expiry: self.cfg.ticket_expiry.min(escrow_expiry),
        };
        let ticket = SignedTicket::sign(&self.identity, ticket);
        self.stats.tickets_out += 1;
        let msg = FetchMsg::Pay {
            // The pending request this answers, by the digest it was found under.
            request: response.head.request,
            ticket: Box::new(ticket),
        };
        self.out.push_back(Outgoing::Route {
            key: PeerId::from_public_key(&response.head.responder),
            exact: true,
            payload: tagged(&msg),
        });
        Ok(())
    }

    fn finish(&mut self, digest: &[u8; 32]) {
        if let Some(p) = self.pending.remove(digest) {
            self.by_id.remove(&p.id);
        }
    }

    fn start_audit(
        &mut self,
        now_ms: u64,
        id: RequestId,
        request: &SignedRequest,
        response: &SignedResponse,
        rdigest: [u8; 32],
        delivered: bool,
    ) {
        if self.cfg.referees.is_empty() || self.audits.contains_key(&rdigest) {
            return;
        }
        if self.audits.len() >= AUDITS_MAX {
            // Oldest first: audits are bounded; one that cannot start is a missed sample.
            let oldest = self
                .audits
                .iter()
                .min_by_key(|(_, a)| a.deadline_ms)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.audits.remove(&k);
            }
        }
        self.stats.audits += 1;
        let bond = response
            .head
            .bond
            .as_ref()
            .and_then(|p| p.output().ok().map(|(id, _)| id));
        self.audits.insert(
            rdigest,
            Audit {
                id,
                responder: response.head.responder,
                bond,
                case: rdigest,
                beneficiaries: verdict_beneficiaries(&request.head.requester, &self.cfg.referees),
                wrong: BTreeMap::new(),
                answered: BTreeSet::new(),
                deadline_ms: now_ms + u64::from(self.cfg.audit_timeout_ms),
                delivered,
            },
        );
        let msg = tagged(&FetchMsg::Audit {
            request: Box::new(request.clone()),
            response: Box::new(response.clone()),
        });
        for r in &self.cfg.referees {
            self.out.push_back(Outgoing::Route {
                key: PeerId::from_public_key(r),
                exact: true,
                payload: msg.clone(),
            });
        }
    }

    fn on_audited(&mut self, from: &PeerId, rdigest: [u8; 32], outcome: AuditOutcome) {
        let quorum = usize::from(self.cfg.referee_quorum);
        let Some(a) = self.audits.get_mut(&rdigest) else {
            return;
        };
        // The origin of a routed message is only a hint, so a finding counts only with a
        // verdict signature by a listed referee; "correct"/"unable" answers just close the
        // audit early once every referee has spoken.
        match outcome {
            AuditOutcome::Wrong { referee, signature } => {
                if !self.cfg.referees.contains(&referee) || a.answered.contains(&referee) {
                    return;
                }
                let Some(bond) = a.bond else {
                    a.answered.insert(referee);
                    return;
                };
                let probe = Verdict {
                    bond,
                    case: a.case,
                    beneficiaries: a.beneficiaries.clone(),
                    signatures: vec![(referee, signature)],
                };
                let one = BondTerms {
                    referees: vec![referee],
                    referee_quorum: 1,
                    ..BondTerms::until(Epoch(0))
                };
                if probe.verify(&one).is_err() {
                    self.stats.dropped += 1;
                    return;
                }
                a.answered.insert(referee);
                a.wrong.insert(referee, signature);
            }
            AuditOutcome::Correct | AuditOutcome::Unable => {
                if let Some(r) = self
                    .cfg
                    .referees
                    .iter()
                    .find(|r| PeerId::from_public_key(r) == *from)
                {
                    a.answered.insert(*r);
                }
            }
        }
        if a.wrong.len() >= quorum && quorum > 0 {
            let a = self.audits.remove(&rdigest).expect("present");
            let verdict = Verdict {
                bond: a.bond.expect("wrong findings need a bond"),
                case: a.case,
                beneficiaries: a.beneficiaries,
                signatures: a.wrong.into_iter().collect(),
            };
            self.events.push_back(FetchEvent::Slashed {
                id: a.id,
                responder: a.responder,
                verdict: Box::new(verdict),
            });
            if a.delivered {
                self.events.push_back(FetchEvent::Retracted { id: a.id });
            }
        } else if a.answered.len() >= self.cfg.referees.len() {
            self.audits.remove(&rdigest);
        }
    }

    /// The digest of `request` if it is one of our own pending requests, byte for byte: when we
    /// are the peer closest to our own request's key, the overlay hands it back to us, and
    /// checking our own signature again would cost a verification (~40 µs) on the request's path.
    fn own_pending(&self, request: &SignedRequest) -> Option<[u8; 32]> {
        if request.head.requester != self.identity.public_key() {
            return None;
        }
        let digest = request.head.digest();
        self.pending
            .get(&digest)
            .is_some_and(|p| p.request == *request)
            .then_some(digest)
    }

    // ----- responder ---------------------------------------------------------------------

    fn on_request(
        &mut self,
        now_ms: u64,
        request: SignedRequest,
        forwarded: bool,
    ) -> Result<(), FetchError> {
        let digest = match self.own_pending(&request) {
            Some(digest) => digest,
            None => request.verify()?,
        };
        let head = &request.head;
        let requester_peer = PeerId::from_public_key(&head.requester);
        if let Some((_, cached)) = self.served.iter().find(|(d, _)| *d == digest) {
            // A re-sent request: the same answer again, no new work.
            self.out.push_back(Outgoing::Route {
                key: requester_peer,
                exact: true,
                payload: cached.clone(),
            });
            return Ok(());
        }
        let own = head.requester == self.identity.public_key();
        if !own && !self.limiter.allow(&head.requester, now_ms) {
            return self.refuse(requester_peer, digest, RefusalReason::RateLimited);
        }
        // The closest peer lets up to `replicas − 1` others compete, once. If that is the
        // requester itself, all `replicas` are others.
        let count = if own {
            head.replicas
        } else {
            head.replicas - 1
        };
        if !forwarded && count > 0 && !head.target.is_exact() {
            self.out.push_back(Outgoing::Forward {
                key: head.target.key(),
                count,
                exclude: Some(requester_peer),
                payload: tagged(&FetchMsg::Request {
                    request: Box::new(request.clone()),
                    forwarded: true,
                }),
            });
        }
        // The closest peer forwards even when it does not answer (it is on the route).
        if own || !self.cfg.serve {
            return Ok(());
        }
        if !self.can_serve(head) {
            return self.refuse(requester_peer, digest, RefusalReason::NotHere);
        }
        if self.cfg.price > head.fee_max {
            return self.refuse(requester_peer, digest, RefusalReason::Underpaid);
        }
        let mut escrow = None;
        if self.cfg.price > Amount::ZERO {
            let unpaid = self.unpaid.get(&head.requester).copied().unwrap_or(0);
            let ok = unpaid < self.cfg.unpaid_max
                && head
                    .escrow
                    .as_ref()
                    .is_some_and(|e| self.escrow_ok(e, &head.requester));
            if !ok {
                return self.refuse(requester_peer, digest, RefusalReason::Unpaid);
            }
            escrow = head.escrow.clone();
        }
        let bond_amount = match self.cfg.bond.clone() {
            Some(b) => self
                .verified_output(&b)
                .map(|(_, o)| o.amount)
                .unwrap_or(Amount::ZERO),
            None => Amount::ZERO,
        };
        if head.collateral_min > bond_amount {
            return self.refuse(requester_peer, digest, RefusalReason::NoBond);
        }
        let answer = match &head.target {
            Target::Peer { path, .. } => {
                if self.incoming.len() >= INCOMING_MAX {
                    return self.refuse(requester_peer, digest, RefusalReason::Full);
                }
                let token = self.next_token;
                self.next_token += 1;
                self.events.push_back(FetchEvent::Incoming(Incoming {
                    token,
                    requester: head.requester,
                    path: path.clone(),
                    method: head.method,
                    headers: head.headers.clone(),
                    body: head.body.clone(),
                }));
                self.incoming.insert(token, (request, digest));
                return Ok(());
            }
            Target::Block { hash } => match head.method {
                Method::Put => {
                    if Sha256::digest(&head.body).as_slice() != hash {
                        return Err(FetchError::WrongContent(
                            "block does not hash to its address",
                        ));
                    }
                    if self.blocks.put(head.body.clone()).is_none() {
                        return self.refuse(requester_peer, digest, RefusalReason::Full);
                    }
                    (201, Vec::new(), Proof::None)
                }
                _ => {
                    let mut body = self
                        .blocks
                        .get(hash)
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default();
                    if self.cfg.fault == Fault::Lie {
                        body.push(0xEE);
                    }
                    (200, body, Proof::None)
                }
            },
            Target::Contract { contract, .. } => {
                let host = self.contracts.get(contract).expect("can_serve checked");
                let e = service::evaluate(host, contract, &requester_peer, self.tick, &head.body)
                    .expect("the host holds the contract");
                let mut body = e.body;
                if self.cfg.fault == Fault::Lie {
                    body.push(0xEE);
                }
                (e.status, body, e.proof)
            }
        };
        let (status, body, proof) = answer;
        self.answer(request, digest, status, Vec::new(), body, proof, escrow);
        Ok(())
    }

    fn can_serve(&self, head: &RequestHead) -> bool {
        match &head.target {
            Target::Contract { contract, .. } => self.contracts.contains_key(contract),
            Target::Block { hash } => head.method == Method::Put || self.blocks.contains(hash),
            Target::Peer { peer, path } => {
                *peer == self.me
                    && self
                        .paths
                        .iter()
                        .any(|p| path == p || path.starts_with(&format!("{p}/")))
            }
        }
    }

    fn escrow_ok(&mut self, proof: &OutputProof, requester: &PublicKey) -> bool {
        let Ok((_, out)) = self.verified_output(proof) else {
            return false;
        };
        out.owner == *requester
            && out
                .bond
                .as_ref()
                .is_some_and(|t| t.lottery.is_some() && t.expiry >= self.cfg.epoch)
            && out.amount >= self.cfg.price
    }

    fn refuse(
        &mut self,
        to: PeerId,
        request: [u8; 32],
        reason: RefusalReason,
    ) -> Result<(), FetchError> {
        self.stats.refused += 1;
        self.out.push_back(Outgoing::Route {
            key: to,
            exact: true,
            payload: tagged(&FetchMsg::Refused {
                request,
                reason: reason as u8,
            }),
        });
        Ok(())
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per kind of answer"
    )]
    fn answer(
        &mut self,
        request: SignedRequest,
        digest: [u8; 32],
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        proof: Proof,
        escrow: Option<Box<OutputProof>>,
    ) {
        let mut secret = [0u8; 32];
        self.rng.fill_bytes(&mut secret);
        let price = self.cfg.price;
        let head = ResponseHead {
            request: digest,
            responder: self.identity.public_key(),
            status,
            headers,
            body,
            price,
            payee_commit: crate::proto::ledger::ticket::commit(&secret),
            bond: self.cfg.bond.clone().map(Box::new),
            proof,
        };
        let payload = tagged(&FetchMsg::Response(Box::new(head.sign(&self.identity))));
        let requester = request.head.requester;
        self.stats.served += 1;
        if price > Amount::ZERO {
            if self.awaiting.len() >= AWAITING_PAY_MAX
                && let Some(old) = self.awaiting_order.pop_front()
            {
                self.awaiting.remove(&old);
            }
            self.awaiting.insert(
                digest,
                Awaiting {
                    requester,
                    secret,
                    price,
                    escrow,
                },
            );
            self.awaiting_order.push_back(digest);
            if self.unpaid.len() < UNPAID_KEYS_MAX || self.unpaid.contains_key(&requester) {
                *self.unpaid.entry(requester).or_insert(0) += 1;
            }
        }
        if self.served.len() >= SERVED_MAX {
            self.served.pop_front();
        }
        self.served.push_back((digest, payload.clone()));
        self.out.push_back(Outgoing::Route {
            key: PeerId::from_public_key(&requester),
            exact: true,
            payload,
        });
    }

    /// Answer a custom-path request delivered as [`FetchEvent::Incoming`]. Unknown tokens are
    /// ignored (answered already, or expired).
    pub fn respond(
        &mut self,
        token: u64,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) {
        let Some((request, digest)) = self.incoming.remove(&token) else {
            return;
        };
        let escrow = request.head.escrow.clone();
        self.answer(request, digest, status, headers, body, Proof::None, escrow);
    }

    fn on_pay(&mut self, request: [u8; 32], ticket: SignedTicket) -> Result<(), FetchError> {
        let Some(a) = self.awaiting.get(&request) else {
            return Err(FetchError::Unknown);
        };
        ticket.verify()?;
        let t = &ticket.ticket;
        if t.payer != a.requester || t.payee != self.identity.public_key() {
            return Err(FetchError::BadPayment("ticket names other parties"));
        }
        if t.payee_commit != crate::proto::ledger::ticket::commit(&a.secret) {
            return Err(FetchError::BadPayment("ticket names another secret"));
        }
        if t.expiry < self.cfg.epoch {
            return Err(FetchError::BadPayment("ticket expired"));
        }
        // Expected value ≥ price: threshold / 2^64 × face ≥ price.
        let ev = (u128::from(t.win_threshold) * u128::from(t.face.0)) >> 64;
        if ev + 1 < u128::from(a.price.0) {
            return Err(FetchError::BadPayment("ticket worth less than the price"));
        }
        let escrow_root = a
            .escrow
            .as_ref()
            .and_then(|e| e.output().ok())
            .and_then(|(_, o)| {
                o.bond
                    .as_ref()
                    .and_then(|b| b.lottery.as_ref())
                    .map(|l| l.root)
            });
        if escrow_root != Some(t.escrow_root) {
            return Err(FetchError::BadPayment("ticket drawn on another escrow"));
        }
        let a = self.awaiting.remove(&request).expect("present");
        self.awaiting_order.retain(|d| *d != request);
        if let Some(n) = self.unpaid.get_mut(&a.requester) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.unpaid.remove(&a.requester);
            }
        }
        self.stats.tickets_in += 1;
        self.events.push_back(FetchEvent::Paid {
            payer: a.requester,
            price: a.price,
        });
        if ticket.wins(&a.secret) {
            self.stats.tickets_won += 1;
            self.events.push_back(FetchEvent::TicketWon {
                winning: Box::new(WinningTicket {
                    ticket,
                    reveal: a.secret,
                }),
                escrow: a.escrow.expect("paid answers keep the escrow"),
            });
        }
        Ok(())
    }

    // ----- referee -----------------------------------------------------------------------

    fn on_audit(
        &mut self,
        now_ms: u64,
        request: SignedRequest,
        response: SignedResponse,
    ) -> Result<(), FetchError> {
        let me = self.identity.public_key();
        if !self.cfg.referees.contains(&me) {
            return Ok(());
        }
        let qdigest = request.verify()?;
        let rdigest = response.verify()?;
        if response.head.request != qdigest {
            return Err(FetchError::Malformed("response answers another request"));
        }
        let requester = PeerId::from_public_key(&request.head.requester);
        if !self.limiter.allow(&request.head.requester, now_ms) {
            return self.refuse(requester, qdigest, RefusalReason::RateLimited);
        }
        self.stats.refereed += 1;
        let outcome = match judge(&self.contracts, &request, &response) {
            Judgement::Correct => AuditOutcome::Correct,
            Judgement::Unable => AuditOutcome::Unable,
            Judgement::Wrong => {
                let bond = response
                    .head
                    .bond
                    .as_ref()
                    .and_then(|p| p.output().ok().map(|(id, _)| id))
                    .unwrap_or(OutputId([0; 32]));
                let beneficiaries =
                    verdict_beneficiaries(&request.head.requester, &self.cfg.referees);
                let (referee, signature) =
                    Verdict::sign_naming(&self.identity, &bond, &rdigest, &beneficiaries);
                AuditOutcome::Wrong { referee, signature }
            }
        };
        self.out.push_back(Outgoing::Route {
            key: requester,
            exact: true,
            payload: tagged(&FetchMsg::Audited {
                response: rdigest,
                outcome,
            }),
        });
        Ok(())
    }

    // ----- driving -----------------------------------------------------------------------

    /// A routed message with our service tag arrived from (claimed) `origin`. Bad input is a
    /// typed error and changes nothing; the caller just drops it.
    pub fn handle_message(
        &mut self,
        now_ms: u64,
        origin: PeerId,
        bytes: &[u8],
    ) -> Result<(), FetchError> {
        let r = self.dispatch(now_ms, origin, bytes);
        if r.is_err() {
            self.stats.dropped += 1;
        }
        r
    }

    fn dispatch(&mut self, now_ms: u64, origin: PeerId, bytes: &[u8]) -> Result<(), FetchError> {
        match FetchMsg::decode(bytes)? {
            FetchMsg::Request { request, forwarded } => {
                self.on_request(now_ms, *request, forwarded)
            }
            FetchMsg::Response(r) => self.on_response(now_ms, *r),
            FetchMsg::Refused { request, reason } => {
                let reason = RefusalReason::from_code(reason)
                    .ok_or(FetchError::Malformed("refusal code"))?;
                if let Some(p) = self.pending.get_mut(&request) {
                    p.refusal = Some(reason);
                }
                Ok(())
            }
            FetchMsg::Pay { request, ticket } => self.on_pay(request, *ticket),
            FetchMsg::Audit { request, response } => self.on_audit(now_ms, *request, *response),
            FetchMsg::Audited { response, outcome } => {
                self.on_audited(&origin, response, outcome);
                Ok(())
            }
            FetchMsg::Store { block } => {
                if block.len() > msg::BODY_BYTES_MAX {
                    return Err(FetchError::TooLarge("block"));
                }
                // Unsolicited, unpaid copies are bounded by the store's byte budget; a full
                // store drops them.
                let _ = self.blocks.put(block);
                Ok(())
            }
        }
    }

    /// When [`Fetch::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> u64 {
        let p = self
            .pending
            .values()
            .map(|p| {
                if p.accepted.is_empty() && p.sends < SENDS_MAX {
                    p.next_send_ms.min(p.deadline_ms)
                } else {
                    p.deadline_ms
                }
            })
            .min()
            .unwrap_or(u64::MAX);
        let a = self
            .audits
            .values()
            .map(|a| a.deadline_ms)
            .min()
            .unwrap_or(u64::MAX);
        p.min(a)
    }

    /// Re-send unanswered requests, time out the hopeless, expire audits.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let mut resend = Vec::new();
        let mut expired = Vec::new();
        for (d, p) in &mut self.pending {
            if now_ms >= p.deadline_ms {
                expired.push(*d);
            } else if p.accepted.is_empty() && p.sends < SENDS_MAX && now_ms >= p.next_send_ms {
                p.sends += 1;
                p.next_send_ms = now_ms + u64::from(self.cfg.attempt_ms);
                resend.push(p.request.clone());
            }
        }
        for r in resend {
            self.send_request(&r);
        }
        for d in expired {
            if let Some(p) = self.pending.remove(&d) {
                self.by_id.remove(&p.id);
                if p.accepted.is_empty() {
                    let err = match p.refusal {
                        Some(r) => FetchError::Refused(r),
                        None => FetchError::Timeout { attempts: p.sends },
                    };
                    self.events.push_back(FetchEvent::Completed {
                        id: p.id,
                        result: Err(err),
                    });
                }
            }
        }
        self.audits.retain(|_, a| a.deadline_ms > now_ms);
        if now_ms >= self.next_replicate_ms {
            self.replicate(now_ms);
        }
    }

    /// The liveness duty: copy up to 32 held blocks (continuing where the last round stopped)
    /// to the peers closest to their hashes.
    fn replicate(&mut self, now_ms: u64) {
        self.next_replicate_ms = now_ms + u64::from(self.cfg.replicate_ms);
        if self.cfg.block_replicas <= 1 {
            return;
        }
        let start = self.replicate_cursor.unwrap_or([0; 32]);
        let batch: Vec<[u8; 32]> = self
            .blocks
            .hashes()
            .filter(|h| self.replicate_cursor.is_none() || **h > start)
            .take(32)
            .copied()
            .collect();
        self.replicate_cursor = if batch.len() < 32 {
            None
        } else {
            batch.last().copied()
        };
        for hash in batch {
            let block = self.blocks.get(&hash).expect("listed").to_vec();
            self.out.push_back(Outgoing::Forward {
                key: PeerId(hash),
                count: self.cfg.block_replicas - 1,
                exclude: None,
                payload: tagged(&FetchMsg::Store { block }),
            });
        }
    }

    /// The next message to send.
    pub fn poll_send(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<FetchEvent> {
        self.events.pop_front()
    }
}

/// A referee's finding on a request and its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// The answer is right.
    Correct,
    /// The answer is provably wrong.
    Wrong,
    /// We cannot tell (no replica at the claimed root, or nothing to check).
    Unable,
}

/// Re-check an answer: a block by its hash; a contract call by re-executing it on our replica
/// (which must be at the claimed prior root) with the same caller and tick.
pub fn judge(
    contracts: &BTreeMap<ContractId, ContractHost>,
    request: &SignedRequest,
    response: &SignedResponse,
) -> Judgement {
    let head = &request.head;
    let r = &response.head;
    match (&head.target, &r.proof) {
        (Target::Block { hash }, _) if head.method == Method::Get && r.status == 200 => {
            if Sha256::digest(&r.body).as_slice() == hash {
                Judgement::Correct
            } else {
                Judgement::Wrong
            }
        }
        (
            Target::Contract { contract, .. },
            Proof::Contract {
                code,
                prior_root,
                tick,
                ..
            },
        ) => {
            let Some(host) = contracts.get(contract) else {
                return Judgement::Unable;
            };
            if host.code_of(contract).ok() != Some(*code)
                || host.contract_root(contract).ok() != Some(*prior_root)
            {
                return Judgement::Unable;
            }
            let caller = PeerId::from_public_key(&head.requester);
            match service::evaluate(host, contract, &caller, *tick, &head.body) {
                Some(e) if e.status == r.status && e.body == r.body && e.proof == r.proof => {
                    Judgement::Correct
                }
                Some(_) => Judgement::Wrong,
                None => Judgement::Unable,
            }
        }
        _ => Judgement::Unable,
    }
}

/// Who a verdict against a fetch responder pays: the requester, then the referees (sorted),
/// at most the ledger's beneficiary bound.
pub fn verdict_beneficiaries(requester: &PublicKey, referees: &[PublicKey]) -> Vec<PublicKey> {
    let mut refs: Vec<PublicKey> = referees
        .iter()
        .filter(|r| *r != requester)
        .copied()
        .collect();
    refs.sort();
    let mut out = vec![*requester];
    out.extend(refs);
    out.truncate(crate::proto::ledger::BENEFICIARIES_MAX);
    out
}

fn tagged(msg: &FetchMsg) -> Vec<u8> {
    let body = msg.encode();
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(SERVICE_FETCH);
    out.extend_from_slice(&body);
    out
}
