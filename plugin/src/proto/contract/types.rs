//! Identifiers, units and the plain data that flows in and out of the contract host.

use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::ContractError;

/// A sha256 output.
pub type Digest = [u8; 32];

/// Domain tag of [`ContractId::derive`].
const CONTRACT_ID_DOMAIN: &[u8] = b"meshwork/contract-id/v1";

macro_rules! digest_newtype {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        pub struct $name(pub Digest);

        impl $name {
            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: Digest) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &Digest {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(&self.0[..6]))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
    };
}

digest_newtype!(
    /// sha256 of a contract's wasm bytes, exactly as loaded. Peers refuse code whose hash differs
    /// from the session's agreed one ([`super::ContractHost::load_code_expecting`]).
    CodeHash
);
digest_newtype!(
    /// Address of a contract instance, derived from its code, creator and a salt
    /// ([`ContractId::derive`]), so every peer computes the same id.
    ContractId
);
digest_newtype!(
    /// Who is calling: a player (`PeerId` = sha256 of its ed25519 key) for a top-level input,
    /// or the calling contract's [`ContractId`] for a nested `call`.
    Address
);
digest_newtype!(
    /// A sha256 Merkle root: of one contract's key-value state, or of the whole host
    /// (every contract's code hash and state root).
    StateRoot
);

impl CodeHash {
    /// The hash of `wasm`: plain sha256, no domain tag, so `sha256sum x.wasm` agrees.
    pub fn of(wasm: &[u8]) -> Self {
        Self(Sha256::digest(wasm).into())
    }
}

impl ContractId {
    /// `sha256("meshwork/contract-id/v1" ‖ code hash ‖ creator ‖ salt)`.
    pub fn derive(code: CodeHash, creator: Address, salt: &Digest) -> Self {
        let mut h = Sha256::new();
        h.update(CONTRACT_ID_DOMAIN);
        h.update(code.0);
        h.update(creator.0);
        h.update(salt);
        Self(h.finalize().into())
    }
}

impl From<ContractId> for Address {
    fn from(id: ContractId) -> Self {
        Self(id.0)
    }
}

/// Units of compute. wasmi charges it per executed operator; the host charges it for host calls
/// (see [`super::FuelCosts`]). Fuel used is the weight that prices a call and weights validators.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Fuel(pub u64);

impl Fuel {
    /// No fuel.
    pub const ZERO: Self = Self(0);

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// `self - other`, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }
}

/// The game tick an input belongs to, as agreed by the session (contracts read it through `tick`).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Tick(pub u64);

/// One ordered input of a transition: `caller` asks `contract` to run `data` at `tick` with at
/// most `fuel_limit` fuel. The caller is authenticated outside the host (a signed session input).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Input {
    /// The contract whose `mw_call` export runs.
    pub contract: ContractId,
    /// Who sent the input.
    pub caller: Address,
    /// The tick the input belongs to.
    pub tick: Tick,
    /// The most fuel this input may burn, nested calls included; at most
    /// [`super::ConsensusParams::fuel_per_input_max`].
    pub fuel_limit: Fuel,
    /// The bytes the contract reads with `input_read`.
    pub data: Vec<u8>,
}

/// Something a contract reported with `emit`; kept only if the whole input succeeds and the
/// emitting call was not rolled back.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Event {
    /// The contract that emitted it.
    pub contract: ContractId,
    /// A short label chosen by the contract.
    pub topic: Vec<u8>,
    /// Free-form payload.
    pub data: Vec<u8>,
}

/// What one input did. An input that fails leaves no state change and no events, but still
/// burns the fuel it used (so a failing input is not free to send).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Receipt {
    /// The output bytes (`output` import) on success, or why the input failed.
    pub result: Result<Vec<u8>, ContractError>,
    /// Fuel burned, host charges and nested calls included.
    pub fuel_used: Fuel,
    /// Events in emission order (empty on failure).
    pub events: Vec<Event>,
}

impl Receipt {
    /// The output bytes, or the error.
    pub fn output(&self) -> Result<&[u8], &ContractError> {
        self.result.as_deref()
    }
}
