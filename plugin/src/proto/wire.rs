//! Wire format: versioned frames, bincode 2 bodies with a byte limit, chunking of large messages.
//!
//! # Frames, byte by byte
//!
//! Every datagram Meshwork puts on a link is one frame of at most [`FRAME_BYTES_MAX`] (60 KiB;
//! matchbox native cannot send more than 64 KiB and does not fragment):
//!
//! ```text
//! offset  size  field
//! 0       1     version      = 1 (PROTOCOL_VERSION); any other value is rejected
//! 1       1     kind         0 = whole message, 1 = chunk of a larger message
//! kind 0:
//! 2       ..    body         bincode 2 (standard config: little-endian varints) of the message
//! kind 1:
//! 2       4     message id   u32 little-endian, chosen by the sender, unique per link while live
//! 6       2     index        u16 little-endian, 0-based chunk number
//! 8       2     count        u16 little-endian, total chunks (2..=CHUNKS_MAX)
//! 10      ..    bytes        the chunk's share of the body (≤ CHUNK_BYTES)
//! ```
//!
//! A chunked body is the same bincode encoding a whole frame would carry, cut into
//! `CHUNK_BYTES` pieces; the receiver's [`Reassembler`] glues them back within bounded buffers
//! and hands the body to [`decode`]. Decoding never reads past [`MESSAGE_BYTES_MAX`], rejects
//! trailing bytes and never panics on any input (fuzzed by `fuzz_targets/frame.rs`).
//!
//! Integers in message types have explicit widths (`u8`…`u64`); `usize` is never encoded.

use std::collections::BTreeMap;

use serde::{Serialize, de::DeserializeOwned};

/// Version byte of every frame.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest frame put on a link.
pub const FRAME_BYTES_MAX: usize = 60 * 1024;
/// Bytes of body per chunk frame.
pub const CHUNK_BYTES: usize = FRAME_BYTES_MAX - CHUNK_HEADER_BYTES;
/// Largest message body (after reassembly) a node accepts.
pub const MESSAGE_BYTES_MAX: usize = 1024 * 1024;
/// Most chunks one message may have.
pub const CHUNKS_MAX: u16 = MESSAGE_BYTES_MAX.div_ceil(CHUNK_BYTES) as u16;
const CHUNK_HEADER_BYTES: usize = 10;
const KIND_WHOLE: u8 = 0;
const KIND_CHUNK: u8 = 1;

/// Why a frame or body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame is shorter than its header.
    #[error("truncated frame ({0} bytes)")]
    Truncated(usize),
    /// The frame is longer than `FRAME_BYTES_MAX`.
    #[error("oversized frame ({0} bytes)")]
    Oversized(usize),
    /// The message body is longer than `MESSAGE_BYTES_MAX`.
    #[error("oversized message ({0} bytes)")]
    MessageTooLarge(usize),
    /// Unknown protocol version.
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// Unknown frame kind.
    #[error("unknown frame kind {0}")]
    Kind(u8),
    /// A chunk header is inconsistent (index ≥ count, count out of range, changed count…).
    #[error("bad chunk: {0}")]
    BadChunk(&'static str),
    /// Too many partial messages are being reassembled on this link.
    #[error("too many partial messages in flight")]
    TooManyPartials,
    /// The body is not a valid encoding of the expected message type.
    #[error("undecodable body: {0}")]
    Decode(String),
    /// The body decoded but bytes were left over.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// Encoding failed (a message type that cannot be encoded: a programmer error).
    #[error("encode: {0}")]
    Encode(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MESSAGE_BYTES_MAX>()
}

/// Encode `message` into one or more frames, each ≤ `FRAME_BYTES_MAX`. `message_id` names the
/// chunks of this message if it needs more than one frame.
pub fn encode<T: Serialize>(message: &T, message_id: u32) -> Result<Vec<Vec<u8>>, WireError> {
    // Encode straight after a whole-frame header into a buffer sized for typical messages:
    // growing a vector from empty byte by byte and copying the body into a frame afterwards
    // cost more than the encoding itself. Only a body too large for one frame is copied again.
    let mut frame = Vec::with_capacity(ENCODE_CAPACITY);
    frame.extend_from_slice(&[PROTOCOL_VERSION, KIND_WHOLE]);
    bincode::serde::encode_into_std_write(message, &mut frame, config())
        .map_err(|e| WireError::Encode(e.to_string()))?;
    let body_len = frame.len() - 2;
    if body_len > MESSAGE_BYTES_MAX {
        return Err(WireError::MessageTooLarge(body_len));
    }
    if frame.len() <= FRAME_BYTES_MAX {
        if frame.capacity() > frame.len() + ENCODE_SLACK {
            // Frames may wait in queues: do not hold the unused part of the buffer.
            frame.shrink_to_fit();
        }
        return Ok(vec![frame]);
    }
    Ok(frame_body(&frame[2..], message_id))
}

/// Initial buffer for [`encode`]: most overlay messages fit.
const ENCODE_CAPACITY: usize = 512;
/// Unused capacity [`encode`] tolerates before shrinking a frame.
const ENCODE_SLACK: usize = 64;

/// The bincode body of `message`, without a frame header.
pub fn encode_body<T: Serialize>(message: &T) -> Result<Vec<u8>, WireError> {
    let body = bincode::serde::encode_to_vec(message, config())
        .map_err(|e| WireError::Encode(e.to_string()))?;
    if body.len() > MESSAGE_BYTES_MAX {
        return Err(WireError::MessageTooLarge(body.len()));
    }
    Ok(body)
}

/// Put an encoded body into frames.
pub fn frame_body(body: &[u8], message_id: u32) -> Vec<Vec<u8>> {
    if body.len() + 2 <= FRAME_BYTES_MAX {
        let mut f = Vec::with_capacity(body.len() + 2);
        f.extend_from_slice(&[PROTOCOL_VERSION, KIND_WHOLE]);
        f.extend_from_slice(body);
        return vec![f];
    }
    let count = u16::try_from(body.len().div_ceil(CHUNK_BYTES)).expect("body ≤ MESSAGE_BYTES_MAX");
    body.chunks(CHUNK_BYTES)
        .enumerate()
        .map(|(i, part)| {
            let mut f = Vec::with_capacity(part.len() + CHUNK_HEADER_BYTES);
            f.extend_from_slice(&[PROTOCOL_VERSION, KIND_CHUNK]);
            f.extend_from_slice(&message_id.to_le_bytes());
            f.extend_from_slice(&u16::try_from(i).expect("i < count").to_le_bytes());
            f.extend_from_slice(&count.to_le_bytes());
            f.extend_from_slice(part);
            f
        })
        .collect()
}

/// Decode a complete body as `T`, rejecting trailing bytes.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    if body.len() > MESSAGE_BYTES_MAX {
        return Err(WireError::MessageTooLarge(body.len()));
    }
    let (value, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(WireError::TrailingBytes(body.len() - used));
    }
    Ok(value)
}

/// One frame, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole message body.
    Whole(&'a [u8]),
    /// One chunk of a larger body.
    Chunk {
        /// The sender's id for the message.
        message_id: u32,
        /// Chunk number.
        index: u16,
        /// Total chunks.
        count: u16,
        /// The chunk's bytes.
        bytes: &'a [u8],
    },
}

/// Parse a frame header.
pub fn parse_frame(frame: &[u8]) -> Result<Frame<'_>, WireError> {
    if frame.len() > FRAME_BYTES_MAX {
        return Err(WireError::Oversized(frame.len()));
    }
    let [version, kind, rest @ ..] = frame else {
        return Err(WireError::Truncated(frame.len()));
    };
    if *version != PROTOCOL_VERSION {
        return Err(WireError::Version(*version));
    }
    match *kind {
        KIND_WHOLE => Ok(Frame::Whole(rest)),
        KIND_CHUNK => {
            let [a, b, c, d, i0, i1, n0, n1, bytes @ ..] = rest else {
                return Err(WireError::Truncated(frame.len()));
            };
            let index = u16::from_le_bytes([*i0, *i1]);
            let count = u16::from_le_bytes([*n0, *n1]);
            if !(2..=CHUNKS_MAX).contains(&count) {
                return Err(WireError::BadChunk("count out of range"));
            }
            if index >= count {
                return Err(WireError::BadChunk("index ≥ count"));
            }
            if bytes.is_empty()
                || bytes.len() > CHUNK_BYTES
                || (index + 1 < count && bytes.len() != CHUNK_BYTES)
            {
                return Err(WireError::BadChunk("wrong chunk length"));
            }
            Ok(Frame::Chunk {
                message_id: u32::from_le_bytes([*a, *b, *c, *d]),
                index,
                count,
                bytes,
            })
        }
        other => Err(WireError::Kind(other)),
    }
}

/// Reassembles chunked messages on one link within fixed bounds: at most `partials_max` messages
/// in flight, each at most `MESSAGE_BYTES_MAX`; a partial message untouched for `timeout_ms` is
/// dropped by [`Reassembler::expire`].
#[derive(Debug)]
pub struct Reassembler {
    partials: BTreeMap<u32, Partial>,
    partials_max: usize,
    timeout_ms: u64,
}

#[derive(Debug)]
struct Partial {
    count: u16,
    received: u16,
    parts: Vec<Option<Vec<u8>>>,
    touched_ms: u64,
}

impl Reassembler {
    /// A reassembler holding at most `partials_max` partial messages.
    pub fn new(partials_max: usize, timeout_ms: u64) -> Self {
        Self {
            partials: BTreeMap::new(),
            partials_max,
            timeout_ms,
        }
    }

    /// Feed one frame received at `now_ms`; returns a complete body when one is ready.
    pub fn push(&mut self, now_ms: u64, frame: &[u8]) -> Result<Option<Vec<u8>>, WireError> {
        match parse_frame(frame)? {
            Frame::Whole(body) => Ok(Some(body.to_vec())),
            Frame::Chunk {
                message_id,
                index,
                count,
                bytes,
            } => {
                if !self.partials.contains_key(&message_id) {
                    self.expire(now_ms);
                    if self.partials.len() >= self.partials_max {
                        return Err(WireError::TooManyPartials);
                    }
                    self.partials.insert(
                        message_id,
                        Partial {
                            count,
                            received: 0,
                            parts: vec![None; usize::from(count)],
                            touched_ms: now_ms,
                        },
                    );
                }
                let p = self.partials.get_mut(&message_id).expect("inserted above");
                if p.count != count {
                    self.partials.remove(&message_id);
                    return Err(WireError::BadChunk("chunk count changed"));
                }
                p.touched_ms = now_ms;
                let slot = &mut p.parts[usize::from(index)];
                if slot.is_none() {
                    *slot = Some(bytes.to_vec());
                    p.received += 1;
                }
                if p.received < p.count {
                    return Ok(None);
                }
                let p = self.partials.remove(&message_id).expect("present");
                Ok(Some(p.parts.into_iter().flatten().flatten().collect()))
            }
        }
    }

    /// Drop partial messages not touched within the timeout.
    pub fn expire(&mut self, now_ms: u64) {
        let timeout = self.timeout_ms;
        self.partials
            .retain(|_, p| now_ms.saturating_sub(p.touched_ms) <= timeout);
    }

    /// Partial messages currently held.
    pub fn partials(&self) -> usize {
        self.partials.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Msg {
        a: u32,
        b: Vec<u8>,
    }

    #[test]
    fn small_message_is_one_frame() {
        let m = Msg {
            a: 7,
            b: vec![1, 2, 3],
        };
        let frames = encode(&m, 1).expect("encode");
        assert_eq!(frames.len(), 1);
        let mut r = Reassembler::new(4, 1000);
        let body = r.push(0, &frames[0]).expect("ok").expect("whole");
        assert_eq!(decode::<Msg>(&body).expect("decode"), m);
    }

    #[test]
    fn large_message_is_chunked_and_reassembled_out_of_order() {
        let m = Msg {
            a: 9,
            b: (0..200_000u32).map(|i| i as u8).collect(),
        };
        let mut frames = encode(&m, 42).expect("encode");
        assert!(frames.len() >= 4);
        assert!(frames.iter().all(|f| f.len() <= FRAME_BYTES_MAX));
        frames.reverse();
        let mut r = Reassembler::new(4, 1000);
        let dup = frames[0].clone();
        let mut out = None;
        for f in frames.iter().chain(std::iter::once(&dup)) {
            if let Some(body) = r.push(5, f).expect("ok") {
                out = Some(body);
            }
        }
        assert_eq!(decode::<Msg>(&out.expect("complete")).expect("decode"), m);
        assert_eq!(
            r.partials(),
            1,
            "the duplicate after completion starts a new partial"
        );
        r.expire(10_000);
        assert_eq!(r.partials(), 0);
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert_eq!(parse_frame(&[]), Err(WireError::Truncated(0)));
        assert_eq!(parse_frame(&[2, 0]), Err(WireError::Version(2)));
        assert_eq!(parse_frame(&[1, 9]), Err(WireError::Kind(9)));
        assert_eq!(
            parse_frame(&vec![1; FRAME_BYTES_MAX + 1]),
            Err(WireError::Oversized(FRAME_BYTES_MAX + 1))
        );
        assert!(matches!(
            parse_frame(&[1, 1, 0, 0, 0, 0, 5, 0, 2, 0, 1]),
            Err(WireError::BadChunk(_))
        ));
        assert!(matches!(
            decode::<Msg>(&[0xff, 0xff, 0xff]),
            Err(WireError::Decode(_))
        ));
        let mut body = encode_body(&Msg { a: 1, b: vec![] }).expect("encode");
        body.push(0);
        assert_eq!(decode::<Msg>(&body), Err(WireError::TrailingBytes(1)));
    }

    #[test]
    fn partial_messages_are_bounded() {
        let mut r = Reassembler::new(2, 1000);
        let chunk = |id: u32| {
            let mut f = vec![1, 1];
            f.extend_from_slice(&id.to_le_bytes());
            f.extend_from_slice(&0u16.to_le_bytes());
            f.extend_from_slice(&3u16.to_le_bytes());
            f.extend_from_slice(&vec![0; CHUNK_BYTES]);
            f
        };
        assert_eq!(r.push(0, &chunk(1)), Ok(None));
        assert_eq!(r.push(0, &chunk(2)), Ok(None));
        assert_eq!(r.push(0, &chunk(3)), Err(WireError::TooManyPartials));
        assert_eq!(
            r.push(2000, &chunk(3)),
            Ok(None),
            "stale partials expire to make room"
        );
    }

    #[test]
    fn length_prefix_bomb_is_rejected_without_allocating() {
        // A Vec<u8> claiming u64::MAX elements.
        let body = [7u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(decode::<Msg>(&body).is_err());
    }
}
