//! `mesh://` URLs: what a request is for, and the overlay key it is routed toward.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::FetchError;
use crate::proto::contract::ContractId;
use crate::proto::identity::PeerId;

/// Longest method name or peer path, in bytes.
pub const PATH_BYTES_MAX: usize = 256;

/// What a request is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Target {
    /// `mesh://<contract-id hex>/<method>`: a query or call of a contract, served by the peers
    /// closest to the contract id that hold its state.
    Contract {
        /// The contract.
        contract: ContractId,
        /// The method (opaque to the mesh; the contract's input names it).
        method: String,
    },
    /// `mesh://block/<sha256 hex>`: a content-addressed block, stored at the peers closest to
    /// its hash.
    Block {
        /// sha256 of the block's bytes.
        hash: [u8; 32],
    },
    /// `mesh://peer/<peer-id hex>/<path>`: a custom handler on one peer, routed to it exactly.
    Peer {
        /// The peer.
        peer: PeerId,
        /// The path the handler was registered under (without the leading `/`).
        path: String,
    },
}

impl Target {
    /// Parse a `mesh://` URL.
    pub fn parse(url: &str) -> Result<Self, FetchError> {
        let rest = url
            .strip_prefix("mesh://")
            .ok_or(FetchError::BadUrl("scheme must be mesh://"))?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        match host {
            "block" => Ok(Target::Block {
                hash: hex32(path).ok_or(FetchError::BadUrl("block hash must be 64 hex digits"))?,
            }),
            "peer" => {
                let (id, path) = path.split_once('/').unwrap_or((path, ""));
                let peer =
                    PeerId(hex32(id).ok_or(FetchError::BadUrl("peer id must be 64 hex digits"))?);
                check_path(path)?;
                Ok(Target::Peer {
                    peer,
                    path: path.to_owned(),
                })
            }
            id => {
                let contract = ContractId(
                    hex32(id).ok_or(FetchError::BadUrl("contract id must be 64 hex digits"))?,
                );
                check_path(path)?;
                if path.is_empty() {
                    return Err(FetchError::BadUrl("a contract URL names a method"));
                }
                Ok(Target::Contract {
                    contract,
                    method: path.to_owned(),
                })
            }
        }
    }

    /// The overlay key a request for this target is routed toward.
    pub fn key(&self) -> PeerId {
        match self {
            Target::Contract { contract, .. } => PeerId(contract.0),
            Target::Block { hash } => PeerId(*hash),
            Target::Peer { peer, .. } => *peer,
        }
    }

    /// Whether the request goes to exactly one peer (no replicas compete).
    pub fn is_exact(&self) -> bool {
        matches!(self, Target::Peer { .. })
    }

    /// Structural bounds (for decoded requests, which did not come through [`Target::parse`]).
    pub fn check(&self) -> Result<(), FetchError> {
        match self {
            Target::Contract { method, .. } => {
                check_path(method)?;
                if method.is_empty() {
                    return Err(FetchError::BadUrl("a contract URL names a method"));
                }
                Ok(())
            }
            Target::Block { .. } => Ok(()),
            Target::Peer { path, .. } => check_path(path),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Contract { contract, method } => {
                write!(f, "mesh://{}/{method}", hex::encode(contract.0))
            }
            Target::Block { hash } => write!(f, "mesh://block/{}", hex::encode(hash)),
            Target::Peer { peer, path } => write!(f, "mesh://peer/{}/{path}", hex::encode(peer.0)),
        }
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn check_path(path: &str) -> Result<(), FetchError> {
    if path.len() > PATH_BYTES_MAX {
        return Err(FetchError::BadUrl("path longer than 256 bytes"));
    }
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(FetchError::BadUrl(
            "path contains control characters or spaces",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip() {
        for url in [
            format!("mesh://{}/get_count", "ab".repeat(32)),
            format!("mesh://block/{}", "01".repeat(32)),
            format!("mesh://peer/{}/status/now", "ff".repeat(32)),
            format!("mesh://peer/{}/", "ff".repeat(32)),
        ] {
            let t = Target::parse(&url).expect("valid");
            assert_eq!(t.to_string(), url);
            t.check().expect("parsed targets pass their checks");
        }
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        for url in [
            "http://x/y",
            "mesh://block/abc",
            "mesh://peer/zz/x",
            &format!("mesh://{}", "ab".repeat(32)),
            &format!("mesh://{}/a b", "ab".repeat(32)),
            &format!("mesh://{}/{}", "ab".repeat(32), "m".repeat(300)),
            "mesh://",
        ] {
            assert!(
                matches!(Target::parse(url), Err(FetchError::BadUrl(_))),
                "{url}"
            );
        }
    }
}
