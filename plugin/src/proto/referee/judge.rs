//! [`Referee`]: re-executes checkpoints of sessions it does not play in and signs what it gets.

use std::collections::{BTreeMap, VecDeque};

use super::{
    Attestation, Checkpoint, CheckpointDigest, Claim, InputLog, Panel, RefereeError, VerdictShare,
};
use crate::proto::contract::{CodeHash, ContractHost, StateRoot};
use crate::proto::identity::{Identity, PublicKey};

/// Checkpoints whose roots a referee remembers (to judge claims without re-executing).
pub const REMEMBERED_MAX: usize = 4096;

/// Re-executes checkpoints. [`HostExecutor`] runs them on a [`ContractHost`] holding the prior
/// state; the simulator wraps it to memoise identical `(code, prior root, log)` runs (a pure
/// function), which only a simulator of many referees on one machine may do.
pub trait Executor {
    /// The root after running `log` from `checkpoint.prior_root`.
    fn execute(
        &mut self,
        checkpoint: &Checkpoint,
        log: &InputLog,
    ) -> Result<StateRoot, RefereeError>;
}

/// Runs `log` on a fork of `host` (which must be at the checkpoint's prior root and hold its
/// world contract running the checkpoint's code) and returns the host after it. Contract
/// errors are receipts, not failures: a frame whose tick traps changes nothing.
pub fn execute(
    host: &ContractHost,
    checkpoint: &Checkpoint,
    log: &InputLog,
) -> Result<ContractHost, RefereeError> {
    let actual = host.root();
    if actual != checkpoint.prior_root {
        return Err(RefereeError::PriorRootMismatch {
            expected: checkpoint.prior_root,
            actual,
        });
    }
    let code = host
        .code_of(&checkpoint.world)
        .map_err(|_| RefereeError::UnknownWorld)?;
    if code != checkpoint.code_hash {
        return Err(RefereeError::CodeHashMismatch {
            expected: checkpoint.code_hash,
            actual: code,
        });
    }
    check_log(checkpoint, log)?;
    let inputs = log.to_inputs(checkpoint.world, &checkpoint.roster)?;
    let mut fork = host.clone();
    fork.apply_transition(&inputs);
    Ok(fork)
}

/// The log is the checkpoint's: its hash, player count and end frame.
pub fn check_log(checkpoint: &Checkpoint, log: &InputLog) -> Result<(), RefereeError> {
    if log.hash() != checkpoint.input_log_hash {
        return Err(RefereeError::LogHashMismatch);
    }
    if usize::from(log.players()) != checkpoint.roster.len() {
        return Err(RefereeError::BadLog("player count is not the roster's"));
    }
    if log.end_frame() != checkpoint.frame {
        return Err(RefereeError::BadLog(
            "the log does not end at the checkpoint frame",
        ));
    }
    Ok(())
}

/// An [`Executor`] over a host at the prior root.
#[derive(Debug)]
pub struct HostExecutor<'a> {
    /// The state to fork.
    pub host: &'a ContractHost,
}

impl Executor for HostExecutor<'_> {
    fn execute(
        &mut self,
        checkpoint: &Checkpoint,
        log: &InputLog,
    ) -> Result<StateRoot, RefereeError> {
        Ok(execute(self.host, checkpoint, log)?.root())
    }
}

/// A referee: its key, the code it agreed to run (code consensus), and the roots it computed
/// lately (bounded FIFO of [`REMEMBERED_MAX`]).
#[derive(Debug)]
pub struct Referee {
    identity: Identity,
    code: CodeHash,
    roots: BTreeMap<CheckpointDigest, StateRoot>,
    order: VecDeque<CheckpointDigest>,
}

impl Referee {
    /// A referee for sessions running the world code `code`.
    pub fn new(identity: Identity, code: CodeHash) -> Self {
        Self {
            identity,
            code,
            roots: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Its key.
    pub fn key(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// The checks every duty starts with: not a player, same session, same code, the log is
    /// the checkpoint's.
    fn admit(
        &self,
        panel: &Panel,
        checkpoint: &Checkpoint,
        log: &InputLog,
    ) -> Result<(), RefereeError> {
        let me = self.key();
        checkpoint.check_shape()?;
        if checkpoint.roster.contains(&me) {
            return Err(RefereeError::RefereeInSession(me));
        }
        panel.check(checkpoint)?;
        if checkpoint.code_hash != self.code {
            return Err(RefereeError::CodeHashMismatch {
                expected: self.code,
                actual: checkpoint.code_hash,
            });
        }
        check_log(checkpoint, log)
    }

    /// The root of `checkpoint`, remembered or re-executed (and then remembered).
    fn root(
        &mut self,
        exec: &mut impl Executor,
        checkpoint: &Checkpoint,
        log: &InputLog,
    ) -> Result<StateRoot, RefereeError> {
        let digest = checkpoint.digest();
        if let Some(root) = self.roots.get(&digest) {
            return Ok(*root);
        }
        let root = exec.execute(checkpoint, log)?;
        if self.order.len() >= REMEMBERED_MAX
            && let Some(old) = self.order.pop_front()
        {
            self.roots.remove(&old);
        }
        self.roots.insert(digest, root);
        self.order.push_back(digest);
        Ok(root)
    }

    /// Attempt `attempt` of `checkpoint` asks this referee: checks that it is selected, that it
    /// does not play in the session, the code hash (before running anything) and the log; then
    /// re-executes and signs the root it got.
    pub fn attest(
        &mut self,
        exec: &mut impl Executor,
        panel: &Panel,
        checkpoint: &Checkpoint,
        attempt: u8,
        log: &InputLog,
    ) -> Result<Attestation, RefereeError> {
        self.admit(panel, checkpoint, log)?;
        let me = self.key();
        if !panel.selected(checkpoint.seq, attempt)?.contains(&me) {
            return Err(RefereeError::NotSelected(me));
        }
        let root = self.root(exec, checkpoint, log)?;
        Ok(Attestation::sign(&self.identity, checkpoint.digest(), root))
    }

    /// A finaliser asks the panel to judge `claim`: if this referee's own root for the
    /// checkpoint differs from the claimed one, it signs its share of a verdict against the
    /// player's session bond (as listed in the roster).
    pub fn judge(
        &mut self,
        exec: &mut impl Executor,
        panel: &Panel,
        checkpoint: &Checkpoint,
        log: &InputLog,
        claim: &Claim,
    ) -> Result<VerdictShare, RefereeError> {
        self.admit(panel, checkpoint, log)?;
        let me = self.key();
        if !panel.contains(&me) {
            return Err(RefereeError::NotSelected(me));
        }
        let digest = checkpoint.digest();
        if claim.checkpoint != digest {
            return Err(RefereeError::WrongCheckpoint);
        }
        let member = *checkpoint
            .roster
            .member(&claim.player)
            .ok_or(RefereeError::NotAPlayer(claim.player))?;
        claim.verify()?;
        let root = self.root(exec, checkpoint, log)?;
        if root == claim.root {
            return Err(RefereeError::ClaimAgrees);
        }
        Ok(VerdictShare::sign(
            &self.identity,
            digest,
            member.key,
            member.bond,
        ))
    }
}
