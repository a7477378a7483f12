//! Known world states, the honest computation, and the memoised executor the simulated referees
//! share (a pure function of `(code, prior root, log, world, roster)`; only a simulator of many
//! referees on one machine may memoise it).

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::proto::contract::{ContractHost, StateRoot};
use crate::proto::referee::{Checkpoint, Executor, InputLog, RefereeError, execute};

/// The cheaters' and corrupt referees' shared lie about a root.
pub fn tampered(root: &StateRoot) -> StateRoot {
    StateRoot(
        Sha256::new()
            .chain_update(b"meshwork-sim/tampered")
            .chain_update(root.0)
            .finalize()
            .into(),
    )
}

/// Memo key of a re-execution: everything the result depends on.
fn memo_key(c: &Checkpoint) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(c.code_hash.0);
    h.update(c.prior_root.0);
    h.update(c.input_log_hash.0);
    h.update(c.world.0);
    for m in c.roster.members() {
        h.update(m.key.0);
    }
    h.finalize().into()
}

/// Known states and the memo of results, shared by every simulated peer.
#[derive(Default)]
pub(super) struct Worlds {
    pub(super) states: BTreeMap<StateRoot, ContractHost>,
    pub(super) memo: BTreeMap<[u8; 32], StateRoot>,
    pub(super) executions: u64,
    pub(super) hits: u64,
}

impl Worlds {
    /// Really runs `log` (an honest player's computation) and records the result.
    pub(super) fn run(
        &mut self,
        c: &Checkpoint,
        log: &InputLog,
    ) -> Result<StateRoot, RefereeError> {
        let host = self
            .states
            .get(&c.prior_root)
            .ok_or(RefereeError::PriorRootMismatch {
                expected: c.prior_root,
                actual: StateRoot::default(),
            })?;
        let next = execute(host, c, log)?;
        self.executions += 1;
        let root = next.root();
        self.states.insert(root, next);
        self.memo.insert(memo_key(c), root);
        Ok(root)
    }
}

/// An [`Executor`] over the shared worlds; `corrupt` lies.
pub(super) struct SimExecutor<'a> {
    pub(super) worlds: &'a mut Worlds,
    pub(super) corrupt: bool,
}

impl Executor for SimExecutor<'_> {
    fn execute(&mut self, c: &Checkpoint, log: &InputLog) -> Result<StateRoot, RefereeError> {
        let root = match self.worlds.memo.get(&memo_key(c)) {
            Some(root) => {
                self.worlds.hits += 1;
                *root
            }
            None => self.worlds.run(c, log)?,
        };
        Ok(if self.corrupt { tampered(&root) } else { root })
    }
}
