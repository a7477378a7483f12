//! [`WalletStorage`]: a wallet's key and [`WalletState`] kept natively in two files and in the
//! browser in two local-storage entries.
//!
//! | where   | key                                   | state                                   |
//! |---------|---------------------------------------|-----------------------------------------|
//! | native  | `<location>.key` (hex seed, mode 0600) | `<location>` (bincode, replaced atomically: temp file, fsync, rename) |
//! | browser | local storage `<location>/key` (hex)  | local storage `<location>/state` (hex of the bincode) |
//!
//! The key is kept the way [`Identity::load_or_create`] keeps node keys, so both stay in one
//! format.

use crate::proto::identity::{Identity, IdentityError};
use crate::proto::ledger::{Committee, LedgerError, Wallet, WalletConfig, WalletState};

/// Why a wallet could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum WalletStorageError {
    /// The key could not be read, parsed or written.
    #[error("wallet key: {0}")]
    Key(#[from] IdentityError),
    /// The saved state does not parse, or cannot be encoded.
    #[error("wallet state: {0}")]
    State(#[from] LedgerError),
    /// Reading or writing the state failed.
    #[error("wallet storage: {0}")]
    Io(String),
}

/// Where one wallet is kept (see the module docs for the layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletStorage {
    location: String,
}

impl WalletStorage {
    /// A wallet kept at `location`: a file path natively, a local-storage key prefix in the
    /// browser.
    pub fn new(location: impl Into<String>) -> Self {
        Self {
            location: location.into(),
        }
    }

    /// Load the wallet kept here, or create one (a fresh key, knowing `committee`) and keep it.
    /// A loaded wallet also adopts `committee` if it is newer than the ones it saved, and
    /// resubmits the orders it had not seen settle (their messages are queued).
    pub fn load_or_create(
        &self,
        committee: Committee,
        cfg: WalletConfig,
        now_ms: u64,
    ) -> Result<Wallet, WalletStorageError> {
        let identity = self.identity()?;
        match self.read_state()? {
            Some(bytes) => {
                let state = WalletState::decode(&bytes)?;
                let mut wallet = Wallet::restore(identity, state, cfg, now_ms)?;
                wallet.set_committee(committee);
                Ok(wallet)
            }
            None => {
                let wallet = Wallet::new(identity, committee, cfg);
                self.save(&wallet)?;
                Ok(wallet)
            }
        }
    }

    /// Keep `wallet`'s current state (replacing what was kept).
    pub fn save(&self, wallet: &Wallet) -> Result<(), WalletStorageError> {
        self.write_state(&wallet.state().encode()?)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn identity(&self) -> Result<Identity, IdentityError> {
        Identity::load_or_create(std::path::Path::new(&format!("{}.key", self.location)), 0)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn read_state(&self) -> Result<Option<Vec<u8>>, WalletStorageError> {
        match std::fs::read(&self.location) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(WalletStorageError::Io(format!("{}: {e}", self.location))),
        }
    }

    /// Write a temporary file, sync it, rename it over the state: a crash leaves the old state
    /// or the new one, never a torn file.
    #[cfg(not(target_arch = "wasm32"))]
    fn write_state(&self, bytes: &[u8]) -> Result<(), WalletStorageError> {
        use std::io::Write;
        let path = std::path::Path::new(&self.location);
        let io = |e: std::io::Error| WalletStorageError::Io(format!("{}: {e}", self.location));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = format!("{}.tmp", self.location);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)?;
        #[cfg(unix)]
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }

    #[cfg(target_arch = "wasm32")]
    fn identity(&self) -> Result<Identity, IdentityError> {
        Identity::load_or_create(&format!("{}/key", self.location), 0)
    }

    #[cfg(target_arch = "wasm32")]
    fn local_storage() -> Result<web_sys::Storage, WalletStorageError> {
        web_sys::window()
            .and_then(|w| w.local_storage().ok().flatten())
            .ok_or_else(|| WalletStorageError::Io("local storage unavailable".into()))
    }

    #[cfg(target_arch = "wasm32")]
    fn read_state(&self) -> Result<Option<Vec<u8>>, WalletStorageError> {
        let storage = Self::local_storage()?;
        match storage.get_item(&format!("{}/state", self.location)) {
            Ok(Some(text)) => hex::decode(text.trim())
                .map(Some)
                .map_err(|_| WalletStorageError::Io("saved wallet is not hex".into())),
            Ok(None) => Ok(None),
            Err(_) => Err(WalletStorageError::Io("local storage read failed".into())),
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn write_state(&self, bytes: &[u8]) -> Result<(), WalletStorageError> {
        // One `setItem` replaces the entry whole.
        Self::local_storage()?
            .set_item(&format!("{}/state", self.location), &hex::encode(bytes))
            .map_err(|_| WalletStorageError::Io("local storage write failed (full?)".into()))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::proto::contract::Fuel;
    use crate::proto::ledger::{
        Amount, BondTerms, Epoch, Genesis, LedgerMsg, MemoryStore, Output, Validator,
    };

    #[test]
    fn a_wallet_comes_back_with_its_key_coins_and_unsettled_orders() {
        let dir = std::env::temp_dir().join(format!("meshwork-wallet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let location = dir.join("wallet").to_string_lossy().into_owned();
        let storage = WalletStorage::new(location.clone());

        let key = Identity::from_seed([4; 32]);
        let payee = Identity::from_seed([5; 32]);
        let terms = BondTerms::until(Epoch(1));
        let bonds = [(key.public_key(), Amount(10), Fuel(0))];
        // The wallet's key is created on first load; mint its genesis coins afterwards.
        let first = storage
            .load_or_create(
                Genesis::new(vec![], &bonds, &terms, 1)
                    .expect("genesis")
                    .committee,
                WalletConfig::default(),
                0,
            )
            .expect("create");
        let me = first.public_key();
        assert!(std::fs::metadata(format!("{location}.key")).is_ok());
        let coins = vec![Output::plain(me, Amount(70)), Output::plain(me, Amount(30))];
        let genesis = Genesis::new(coins, &bonds, &terms, 1).expect("genesis");
        let mut validator =
            Validator::new(key.clone(), &genesis, MemoryStore::new()).expect("validator");
        let mut wallet = storage
            .load_or_create(genesis.committee.clone(), WalletConfig::default(), 0)
            .expect("load");
        assert_eq!(wallet.public_key(), me, "the key was kept");
        for (id, o) in genesis.created() {
            wallet.add_coin(id, o.clone(), None);
        }
        let order = wallet
            .pay(0, payee.public_key(), Amount(50), Amount(1))
            .expect("pay");
        storage.save(&wallet).expect("save");
        drop(wallet);

        // The order's messages were lost with the process: the restored wallet sends it again
        // and settles it.
        let mut wallet = storage
            .load_or_create(genesis.committee.clone(), WalletConfig::default(), 10)
            .expect("reload");
        assert_eq!(wallet.pending().copied().collect::<Vec<_>>(), vec![order]);
        assert_eq!(
            wallet.balance(),
            Amount(30),
            "the spent coin stays reserved"
        );
        let (to, msg) = wallet.poll_transmit().expect("order resubmitted");
        assert!(matches!(msg, LedgerMsg::Order { .. }));
        validator
            .handle_message(me_peer(&wallet), msg)
            .expect("vote");
        let (_, vote) = validator.poll_transmit().expect("a vote");
        wallet.handle_message(20, to, vote).expect("vote handled");
        assert_eq!(wallet.pending().count(), 0);
        assert_eq!(wallet.balance(), Amount(30 + 19));
        storage.save(&wallet).expect("save");

        let wallet = storage
            .load_or_create(genesis.committee, WalletConfig::default(), 30)
            .expect("reload");
        assert_eq!(wallet.balance(), Amount(49));
        assert_eq!(
            wallet.state().certificates.len(),
            1,
            "the change's certificate"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn me_peer(w: &Wallet) -> crate::proto::identity::PeerId {
        crate::proto::identity::PeerId::from_public_key(&w.public_key())
    }

    #[test]
    fn a_corrupt_state_is_an_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("meshwork-wallet-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let location = dir.join("wallet");
        std::fs::write(&location, b"\xff\xff\xff not a wallet").expect("write");
        let storage = WalletStorage::new(location.to_string_lossy().into_owned());
        let committee = Genesis::new(
            vec![],
            &[(
                Identity::from_seed([1; 32]).public_key(),
                Amount(1),
                Fuel(0),
            )],
            &BondTerms::until(Epoch(0)),
            1,
        )
        .expect("genesis")
        .committee;
        assert!(matches!(
            storage.load_or_create(committee, WalletConfig::default(), 0),
            Err(WalletStorageError::State(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
