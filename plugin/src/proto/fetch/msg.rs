//! Fetch messages on the wire: signed requests, signed bonded responses, payments, audits.
//!
//! Every message is one [`FetchMsg`], encoded with the wire codec ([`crate::proto::wire`],
//! bincode 2, byte-limited, trailing bytes rejected) and carried as the payload of a routed
//! overlay message behind the one-byte service tag [`super::SERVICE_FETCH`]. Requests and
//! responses are signed over the sha256 of their head's encoding, so either can be relayed to
//! referees and used as evidence.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{FetchError, Target};
use crate::proto::contract::{CodeHash, Fuel, StateRoot, Tick};
use crate::proto::identity::{Domain, Identity, PublicKey, Signature, verify};
use crate::proto::ledger::{Amount, OutputProof, SignedTicket};
use crate::proto::wire;

/// Most headers on a request or response.
pub const HEADERS_MAX: usize = 16;
/// Longest header name or value, in bytes.
pub const HEADER_BYTES_MAX: usize = 256;
/// Largest request or response body. Bodies ride in one routed message; the wire layer chunks
/// anything above a frame, and a block larger than this is stored as several blocks.
pub const BODY_BYTES_MAX: usize = 256 * 1024;
/// Most replicas one request may ask to compete (bounds duplicate work).
pub const REPLICAS_MAX: u8 = 4;
/// Largest encoded fetch message accepted from a peer.
pub const MSG_BYTES_MAX: usize = BODY_BYTES_MAX + 64 * 1024;

/// The request method. Contracts: `Get` and `Post` both *evaluate* a method on the responder's
/// current state without committing it (committing ordered inputs is the sessions' job);
/// blocks: `Get` reads, `Put` stores; custom paths: any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Method {
    /// Read.
    Get,
    /// Evaluate / submit.
    Post,
    /// Store.
    Put,
}

/// The part of a request its author signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHead {
    /// The requester's nonce (unique per requester).
    pub id: u64,
    /// Who asks, and who pays.
    pub requester: PublicKey,
    /// What for.
    pub target: Target,
    /// How.
    pub method: Method,
    /// Name/value pairs, opaque to the mesh.
    pub headers: Vec<(String, String)>,
    /// The body (a contract input, a block to store, …).
    pub body: Vec<u8>,
    /// The most the requester pays for one answer.
    pub fee_max: Amount,
    /// The least bond a responder must have posted.
    pub collateral_min: Amount,
    /// Peers that may compete to answer (1 = only the closest).
    pub replicas: u8,
    /// Time to live, from when the responder receives it.
    pub ttl_ms: u32,
    /// The escrow the requester's tickets are drawn on (absent for free requests).
    pub escrow: Option<Box<OutputProof>>,
}

/// A request and its author's signature ([`Domain::FetchRequest`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRequest {
    /// The request.
    pub head: RequestHead,
    /// Signature over [`RequestHead`]'s digest.
    pub signature: Signature,
}

/// The sha256 of a head's canonical encoding: what signatures and references name.
fn digest_of<T: Serialize>(head: &T) -> [u8; 32] {
    let bytes = wire::encode_body(head).expect("heads are bounded and always encode");
    Sha256::digest(&bytes).into()
}

impl RequestHead {
    /// Structural bounds.
    pub fn check(&self) -> Result<(), FetchError> {
        self.target.check()?;
        check_headers(&self.headers)?;
        if self.body.len() > BODY_BYTES_MAX {
            return Err(FetchError::TooLarge("request body"));
        }
        if self.replicas == 0 || self.replicas > REPLICAS_MAX {
            return Err(FetchError::Malformed("replicas must be 1..=4"));
        }
        Ok(())
    }

    /// The digest a signature covers and responses name.
    pub fn digest(&self) -> [u8; 32] {
        digest_of(self)
    }

    /// Sign as `identity` (which must be the requester).
    pub fn sign(self, identity: &Identity) -> SignedRequest {
        self.sign_digest(identity).0
    }

    /// Sign as `identity`, also returning the digest signed (encoding a head costs as much as
    /// its body, so callers that need both compute it once).
    pub fn sign_digest(self, identity: &Identity) -> (SignedRequest, [u8; 32]) {
        assert_eq!(
            self.requester,
            identity.public_key(),
            "requests are signed by their requester"
        );
        let digest = self.digest();
        let signature = identity.sign(Domain::FetchRequest, &digest);
        (
            SignedRequest {
                head: self,
                signature,
            },
            digest,
        )
    }
}

impl SignedRequest {
    /// Bounds, then the signature.
    pub fn verify(&self) -> Result<[u8; 32], FetchError> {
        self.head.check()?;
        let digest = self.head.digest();
        verify(
            &self.head.requester,
            Domain::FetchRequest,
            &digest,
            &self.signature,
        )
        .map_err(|_| FetchError::BadSignature("request"))?;
        Ok(digest)
    }
}

/// What a responder commits to beyond the body, so that a referee can check it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proof {
    /// Nothing to re-execute (custom paths; blocks verify by hash).
    None,
    /// A contract evaluation: the code, the state it ran on, what it would commit, and its fuel.
    Contract {
        /// The contract's code hash.
        code: CodeHash,
        /// The contract's state root the method ran on.
        prior_root: StateRoot,
        /// The contract's state root after it (not committed by fetch).
        next_root: StateRoot,
        /// Fuel burned.
        fuel: Fuel,
        /// The tick the input ran at.
        tick: Tick,
    },
}

/// The part of a response its author signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseHead {
    /// The digest of the request answered.
    pub request: [u8; 32],
    /// Who answers, and who is paid.
    pub responder: PublicKey,
    /// HTTP-like status: 200 ok, 201 stored, 404 not here, 4xx/5xx errors.
    pub status: u16,
    /// Name/value pairs.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// What the responder asks (≤ the request's `fee_max`).
    pub price: Amount,
    /// sha256 of the responder's ticket secret: the payer's ticket must name it.
    pub payee_commit: [u8; 32],
    /// The bond behind this answer (required when the request asked for collateral).
    pub bond: Option<Box<OutputProof>>,
    /// What a referee re-executes.
    pub proof: Proof,
}

/// A response and its author's signature ([`Domain::FetchResponse`]): the evidence of a dispute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedResponse {
    /// The response.
    pub head: ResponseHead,
    /// Signature over [`ResponseHead`]'s digest.
    pub signature: Signature,
}

impl ResponseHead {
    /// Structural bounds.
    pub fn check(&self) -> Result<(), FetchError> {
        check_headers(&self.headers)?;
        if self.body.len() > BODY_BYTES_MAX {
            return Err(FetchError::TooLarge("response body"));
        }
        Ok(())
    }

    /// The digest a signature covers and verdicts name.
    pub fn digest(&self) -> [u8; 32] {
        digest_of(self)
    }

    /// Sign as `identity` (which must be the responder).
    pub fn sign(self, identity: &Identity) -> SignedResponse {
        assert_eq!(
            self.responder,
            identity.public_key(),
            "responses are signed by their author"
        );
        let signature = identity.sign(Domain::FetchResponse, &self.digest());
        SignedResponse {
            head: self,
            signature,
        }
    }
}

impl SignedResponse {
    /// Bounds, then the signature; returns the digest.
    pub fn verify(&self) -> Result<[u8; 32], FetchError> {
        self.head.check()?;
        let digest = self.head.digest();
        verify(
            &self.head.responder,
            Domain::FetchResponse,
            &digest,
            &self.signature,
        )
        .map_err(|_| FetchError::BadSignature("response"))?;
        Ok(digest)
    }
}

/// A referee's answer to an audit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditOutcome {
    /// Re-execution (or the hash) agrees with the response.
    Correct,
    /// It does not: the referee's signature on a verdict against the response's bond, naming
    /// the beneficiaries (the requester, then the referees, sorted).
    Wrong {
        /// The referee's key.
        referee: PublicKey,
        /// Its verdict signature.
        signature: Signature,
    },
    /// The referee cannot judge (it lacks the code or the state at the claimed root).
    Unable,
}

/// Everything peers say to each other about fetches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FetchMsg {
    /// A request, routed toward its target's key (and forwarded to replicas by the closest).
    Request {
        /// The signed request.
        request: Box<SignedRequest>,
        /// Whether a closer peer already forwarded it (a forwarded request is not forwarded again).
        forwarded: bool,
    },
    /// A response, routed exactly to the requester.
    Response(Box<SignedResponse>),
    /// Unsigned advice that a peer will not serve a request (rate limit, unpaid, no bond, …).
    /// Advisory only: the requester keeps waiting for others and reports it on timeout.
    Refused {
        /// The request's digest.
        request: [u8; 32],
        /// Why (a [`super::RefusalReason`] code).
        reason: u8,
    },
    /// Payment for an accepted response: a lottery ticket naming the responder.
    Pay {
        /// The request's digest.
        request: [u8; 32],
        /// The ticket.
        ticket: Box<SignedTicket>,
    },
    /// Please re-check this response (sent to each referee of the audit committee).
    Audit {
        /// The request.
        request: Box<SignedRequest>,
        /// The response.
        response: Box<SignedResponse>,
    },
    /// A referee's finding, routed back to the auditor that asked.
    Audited {
        /// The response's digest.
        response: [u8; 32],
        /// The finding.
        outcome: AuditOutcome,
    },
    /// A block holder's liveness duty: a copy for a peer close to the block's hash, so the
    /// block keeps about `block_replicas` holders as peers come and go.
    Store {
        /// The block (its address is its sha256).
        block: Vec<u8>,
    },
}

impl FetchMsg {
    /// Encode (the wire codec's body form; the overlay chunks large messages).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_body(self).expect("fetch messages are bounded and always encode")
    }

    /// Decode untrusted bytes: size limit first, then the codec (which rejects trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, FetchError> {
        if bytes.len() > MSG_BYTES_MAX {
            return Err(FetchError::TooLarge("message"));
        }
        wire::decode(bytes).map_err(|_| FetchError::Malformed("undecodable fetch message"))
    }
}

fn check_headers(headers: &[(String, String)]) -> Result<(), FetchError> {
    if headers.len() > HEADERS_MAX {
        return Err(FetchError::TooLarge("headers"));
    }
    if headers
        .iter()
        .any(|(k, v)| k.len() > HEADER_BYTES_MAX || v.len() > HEADER_BYTES_MAX)
    {
        return Err(FetchError::TooLarge("header"));
    }
    Ok(())
}
