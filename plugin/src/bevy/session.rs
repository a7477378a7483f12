//! Bevy glue for sessions and referees: attach a [`SessionService`] to the node
//! ([`attach_session`]), start a session on it, write each confirmed frame as a
//! [`SubmitFrame`], and read [`CheckpointFinalised`] / [`CheatDetected`]. Referee duties run in
//! the background on every client whose service has `referee: true`.
//!
//! Starting and stopping a session needs the world state, which is not a message: call
//! [`SessionService::start`] through `NonSendMut<MeshworkNode>`
//! (`node.node.session.as_mut()`), e.g. when the game's roster changes.

use ::bevy::diagnostic::{Diagnostic, DiagnosticPath, Diagnostics, RegisterDiagnostic};
use ::bevy::prelude::*;
use ::bevy::time::Real;

use super::{MeshworkNode, MeshworkSystems};
use crate::proto::contract::StateRoot;
use crate::proto::identity::PublicKey;
use crate::proto::ledger::{OutputId, Verdict};
use crate::proto::referee::{CheckpointDigest, SessionId};
use crate::proto::session::{SessionEvent, SessionService};

/// Request: one confirmed frame of the session we play; `actions[p]` are roster player `p`'s
/// actions (roster order = sorted public keys).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SubmitFrame {
    /// Per player, its actions this frame.
    pub actions: Vec<Vec<Vec<u8>>>,
}

/// A checkpoint of our session was finalised by referees from other sessions.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFinalised {
    /// The session.
    pub session: SessionId,
    /// Checkpoint number.
    pub seq: u64,
    /// Its digest: the `parent` of a session that continues from it
    /// ([`SessionService::start`]).
    pub digest: CheckpointDigest,
    /// The frame it ends at.
    pub frame: u64,
    /// The finalised world root.
    pub root: StateRoot,
    /// Whether our own state agreed (false: we diverged and should resynchronise).
    pub agreed: bool,
}

/// A player of our session claimed a wrong root; the verdict forfeits its session bond.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct CheatDetected {
    /// The cheater.
    pub player: PublicKey,
    /// Its session bond.
    pub bond: OutputId,
    /// Ledger evidence (submit as a forfeit order).
    pub verdict: Verdict,
}

/// Diagnostic paths of the session glue.
pub mod diagnostics {
    use super::DiagnosticPath;
    /// Checkpoints of other sessions this client attested or judged.
    pub const REFEREE_DUTIES: DiagnosticPath = DiagnosticPath::const_new("meshwork/referee_duties");
    /// The last finalised checkpoint of our session.
    pub const LAST_FINALISED: DiagnosticPath = DiagnosticPath::const_new("meshwork/last_finalised");
}

/// Session events taken from the node during `Receive`.
#[derive(Resource, Default, Debug)]
pub(crate) struct SessionInbox(pub(crate) Vec<SessionEvent>);

/// Attach `service` to the app's node (call from a startup system or with `World` access).
pub fn attach_session(node: &mut MeshworkNode, service: SessionService) {
    node.node.session = Some(service);
}

pub(crate) struct SessionGlue;

impl Plugin for SessionGlue {
    fn build(&self, app: &mut App) {
        app.init_resource::<SessionInbox>()
            .add_message::<SubmitFrame>()
            .add_message::<CheckpointFinalised>()
            .add_message::<CheatDetected>()
            .register_diagnostic(Diagnostic::new(diagnostics::REFEREE_DUTIES))
            .register_diagnostic(Diagnostic::new(diagnostics::LAST_FINALISED))
            .add_systems(PreUpdate, deliver.in_set(MeshworkSystems::Process))
            .add_systems(
                PostUpdate,
                submit
                    .in_set(MeshworkSystems::Send)
                    .before(super::send_requests),
            );
    }
}

fn deliver(
    mut inbox: ResMut<SessionInbox>,
    node: NonSend<MeshworkNode>,
    mut finalised: MessageWriter<CheckpointFinalised>,
    mut cheats: MessageWriter<CheatDetected>,
    mut diagnostics: Diagnostics,
) {
    for ev in inbox.0.drain(..) {
        match ev {
            SessionEvent::CheckpointFinalised {
                session,
                seq,
                digest,
                frame,
                root,
                agreed,
            } => {
                finalised.write(CheckpointFinalised {
                    session,
                    seq,
                    digest,
                    frame,
                    root,
                    agreed,
                });
            }
            SessionEvent::CheatDetected {
                player,
                bond,
                verdict,
            } => {
                cheats.write(CheatDetected {
                    player,
                    bond,
                    verdict: *verdict,
                });
            }
            SessionEvent::Stalled { .. } | SessionEvent::Refereed { .. } => {}
        }
    }
    if let Some(s) = node.node.session.as_ref() {
        let stats = s.stats();
        diagnostics.add_measurement(&diagnostics::REFEREE_DUTIES, || stats.refereed as f64);
        if let Some(seq) = stats.last_finalised {
            diagnostics.add_measurement(&diagnostics::LAST_FINALISED, || seq as f64);
        }
    }
}

fn submit(
    time: Res<Time<Real>>,
    mut node: NonSendMut<MeshworkNode>,
    mut frames: MessageReader<SubmitFrame>,
) {
    let now = u64::try_from(time.elapsed().as_millis()).unwrap_or(u64::MAX);
    let Some(s) = node.node.session.as_mut() else {
        frames.clear();
        return;
    };
    for f in frames.read() {
        if let Err(e) = s.push_frame(now, &f.actions) {
            warn!("session frame refused: {e}");
        }
    }
}
