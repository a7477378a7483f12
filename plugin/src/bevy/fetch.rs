//! Bevy glue for `fetch()`: write a [`StartFetch`], read the matching [`FetchCompleted`].
//!
//! ```no_run
//! use bevy::prelude::*;
//! use meshwork::bevy::prelude::*;
//! use meshwork::proto::fetch::Request;
//!
//! fn ask(mut start: MessageWriter<StartFetch>) {
//!     let url = format!("mesh://block/{}", "00".repeat(32));
//!     start.write(StartFetch { tag: 7, request: Request::get(&url).expect("valid URL") });
//! }
//!
//! fn answers(mut done: MessageReader<FetchCompleted>) {
//!     for d in done.read() {
//!         match &d.result {
//!             Ok(r) => info!("request {} answered {} by {:?}", d.tag, r.status, r.responder),
//!             Err(e) => warn!("request {} failed: {e}", d.tag),
//!         }
//!     }
//! }
//! ```

use std::collections::BTreeMap;

use ::bevy::prelude::*;
use ::bevy::time::Real;

use super::{MeshworkNode, MeshworkSystems};
use crate::proto::fetch::{FetchError, FetchEvent, Incoming, Request, RequestId, Response};

/// Request: start a fetch. `tag` is yours; it comes back in [`FetchCompleted`].
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct StartFetch {
    /// Your correlation tag.
    pub tag: u64,
    /// The request.
    pub request: Request,
}

/// A fetch finished: the accepted answer, or why there is none.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct FetchCompleted {
    /// The tag of the [`StartFetch`].
    pub tag: u64,
    /// The outcome.
    pub result: Result<Response, FetchError>,
}

/// A request for one of our custom paths (`mesh://peer/<us>/<path>`): answer with [`RespondFetch`].
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct FetchIncoming(pub Incoming);

/// Request: answer a [`FetchIncoming`].
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct RespondFetch {
    /// The incoming request's token.
    pub token: u64,
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// Everything else the fetch core reports: tickets won (to redeem), payments received,
/// verdicts reached (to submit as forfeits), results retracted by an audit (discard them).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct FetchNotice(pub FetchEvent);

/// Fetch events taken from the node during `Receive`, turned into messages in `Process`.
#[derive(Resource, Default, Debug)]
pub(crate) struct FetchInbox(pub(crate) Vec<FetchEvent>);

#[derive(Resource, Default, Debug)]
struct Tags(BTreeMap<RequestId, u64>);

pub(crate) struct FetchGlue;

impl Plugin for FetchGlue {
    fn build(&self, app: &mut App) {
        app.init_resource::<FetchInbox>()
            .init_resource::<Tags>()
            .add_message::<StartFetch>()
            .add_message::<FetchCompleted>()
            .add_message::<FetchIncoming>()
            .add_message::<RespondFetch>()
            .add_message::<FetchNotice>()
            .add_systems(PreUpdate, deliver.in_set(MeshworkSystems::Process))
            .add_systems(
                PostUpdate,
                start
                    .in_set(MeshworkSystems::Send)
                    .before(super::send_requests),
            );
    }
}

fn deliver(
    mut inbox: ResMut<FetchInbox>,
    mut tags: ResMut<Tags>,
    mut completed: MessageWriter<FetchCompleted>,
    mut incoming: MessageWriter<FetchIncoming>,
    mut notices: MessageWriter<FetchNotice>,
) {
    for ev in inbox.0.drain(..) {
        match ev {
            FetchEvent::Completed { id, result } => {
                if let Some(tag) = tags.0.remove(&id) {
                    completed.write(FetchCompleted { tag, result });
                }
            }
            FetchEvent::Incoming(i) => {
                incoming.write(FetchIncoming(i));
            }
            other => {
                notices.write(FetchNotice(other));
            }
        }
    }
}

fn start(
    time: Res<Time<Real>>,
    mut node: NonSendMut<MeshworkNode>,
    mut tags: ResMut<Tags>,
    mut starts: MessageReader<StartFetch>,
    mut responds: MessageReader<RespondFetch>,
    mut completed: MessageWriter<FetchCompleted>,
) {
    let now = u64::try_from(time.elapsed().as_millis()).unwrap_or(u64::MAX);
    for s in starts.read() {
        match node.node.fetch(now, s.request.clone()) {
            Ok(id) => {
                tags.0.insert(id, s.tag);
            }
            Err(e) => {
                completed.write(FetchCompleted {
                    tag: s.tag,
                    result: Err(e),
                });
            }
        }
    }
    if let Some(f) = node.node.fetch.as_mut() {
        for r in responds.read() {
            f.respond(r.token, r.status, r.headers.clone(), r.body.clone());
        }
    }
}
