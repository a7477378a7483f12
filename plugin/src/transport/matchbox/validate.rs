//! Validation of WebRTC signalling that arrives from other peers, before matchbox sees it.
//!
//! matchbox 0.15 `unwrap`s the result of parsing and applying a remote Offer/Answer natively
//! (a malformed SDP panics its task), and on wasm a candidate the browser rejects panics too. So
//! every relayed Offer, Answer and ICE candidate passes these checks first, on both targets:
//!
//! - sizes and line counts are bounded, the text is printable ASCII;
//! - an SDP describes exactly one `m=application` section (a data-channel-only session, which
//!   is all matchbox ever offers), with a non-empty `a=mid`, one ICE ufrag/password pair, one DTLS
//!   fingerprint of a known hash and a valid `a=setup` role (`actpass` only in an Offer);
//! - every candidate (in the SDP or trickled as JSON) follows the RFC 8839 grammar;
//! - natively, the SDP is also parsed by `rtc-sdp` and each candidate by `rtc-ice`, the very
//!   parsers webrtc-rs runs inside matchbox, so whatever passes here parses there.
//!
//! Rejections are values ([`SignalError`]); the caller logs the reason and drops the signal.

use std::net::IpAddr;

/// Largest SDP (Offer or Answer) accepted from a peer.
pub const SDP_BYTES_MAX: usize = 16 * 1024;
/// Largest trickled ICE candidate (JSON) accepted from a peer.
pub const CANDIDATE_BYTES_MAX: usize = 1024;
const SDP_LINES_MAX: usize = 256;
const SDP_CANDIDATES_MAX: usize = 32;

/// Why signalling from a peer was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The signal is larger than its limit.
    #[error("{what} too large ({bytes} bytes)")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        bytes: usize,
    },
    /// The envelope is not a valid encoding.
    #[error("undecodable signal: {0}")]
    Undecodable(String),
    /// The SDP is malformed or describes something matchbox never offers.
    #[error("bad SDP: {0}")]
    Sdp(String),
    /// The ICE candidate is malformed.
    #[error("bad ICE candidate: {0}")]
    Candidate(String),
    /// The signal does not fit the state of the link it names (unknown link, wrong role,
    /// second Offer, peer not accepted…).
    #[error("unexpected signal: {0}")]
    Unexpected(&'static str),
    /// A bound was reached (pending links, signals per link).
    #[error("limit reached: {0}")]
    Limit(&'static str),
}

fn sdp_err(reason: impl Into<String>) -> SignalError {
    SignalError::Sdp(reason.into())
}

fn cand_err(reason: impl Into<String>) -> SignalError {
    SignalError::Candidate(reason.into())
}

/// Check a remote Offer (`answer == false`) or Answer SDP.
pub fn check_sdp(sdp: &str, answer: bool) -> Result<(), SignalError> {
    if sdp.len() > SDP_BYTES_MAX {
        return Err(SignalError::TooLarge {
            what: "SDP",
            bytes: sdp.len(),
        });
    }
    if !sdp
        .bytes()
        .all(|b| b == b'\r' || b == b'\n' || (0x20..0x7f).contains(&b))
    {
        return Err(sdp_err("non-printable or non-ASCII bytes"));
    }
    let lines: Vec<&str> = sdp
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > SDP_LINES_MAX {
        return Err(sdp_err(format!("{} lines", lines.len())));
    }
    if lines.first() != Some(&"v=0") {
        return Err(sdp_err("does not start with v=0"));
    }
    let mut media_lines = 0usize;
    let mut in_media = false;
    let mut ufrags = Vec::new();
    let mut pwds = Vec::new();
    let mut fingerprints = Vec::new();
    let mut setups = Vec::new();
    let mut mid = None;
    let mut candidates = 0usize;
    for line in &lines {
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(sdp_err("a line is not <letter>=<value>"));
        }
        let value = &line[2..];
        match bytes[0] {
            b'm' => {
                media_lines += 1;
                in_media = true;
                check_media_line(value)?;
            }
            b'a' => {
                let (key, val) = value
                    .split_once(':')
                    .map_or((value, None), |(k, v)| (k, Some(v)));
                match (key, val) {
                    ("ice-ufrag", Some(v)) => ufrags.push(v),
                    ("ice-pwd", Some(v)) => pwds.push(v),
                    ("fingerprint", Some(v)) => fingerprints.push(v),
                    ("setup", Some(v)) => setups.push(v),
                    ("mid", Some(v)) if in_media => mid = Some(v),
                    ("candidate", Some(v)) => {
                        candidates += 1;
                        check_candidate_line(v)?;
                    }
                    ("sctp-port", Some(v)) if v.parse::<u16>().is_err() => {
                        return Err(sdp_err("bad sctp-port"));
                    }
                    ("max-message-size", Some(v)) if v.parse::<u64>().is_err() => {
                        return Err(sdp_err("bad max-message-size"));
                    }
                    ("ice-lite", _) => return Err(sdp_err("ice-lite is not supported")),
                    (
                        "ice-ufrag" | "ice-pwd" | "fingerprint" | "setup" | "candidate"
                        | "sctp-port" | "max-message-size",
                        None,
                    ) => return Err(sdp_err(format!("a={key} without a value"))),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if media_lines != 1 {
        return Err(sdp_err(format!(
            "{media_lines} media sections (want one m=application)"
        )));
    }
    if candidates > SDP_CANDIDATES_MAX {
        return Err(sdp_err(format!("{candidates} candidates")));
    }
    match mid {
        Some(m)
            if !m.is_empty()
                && m.len() <= 32
                && m.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {}
        _ => return Err(sdp_err("missing or bad a=mid")),
    }
    let ufrag = one_value(&ufrags, "ice-ufrag")?;
    if !(4..=256).contains(&ufrag.len()) || !ufrag.bytes().all(is_ice_char) {
        return Err(sdp_err("bad ice-ufrag"));
    }
    let pwd = one_value(&pwds, "ice-pwd")?;
    if !(22..=256).contains(&pwd.len()) || !pwd.bytes().all(is_ice_char) {
        return Err(sdp_err("bad ice-pwd"));
    }
    check_fingerprint(one_value(&fingerprints, "fingerprint")?)?;
    if !setups.is_empty() {
        let setup = one_value(&setups, "setup")?;
        let ok = if answer {
            matches!(setup, "active" | "passive")
        } else {
            matches!(setup, "actpass" | "active" | "passive")
        };
        if !ok {
            return Err(sdp_err(format!(
                "a=setup:{setup} in an {}",
                if answer { "answer" } else { "offer" }
            )));
        }
    }
    native::parse_sdp(sdp)
}

/// The single distinct value of an attribute that may appear at session and media level.
fn one_value<'a>(values: &[&'a str], name: &str) -> Result<&'a str, SignalError> {
    let Some(first) = values.first() else {
        return Err(sdp_err(format!("no a={name}")));
    };
    if values.iter().any(|v| v != first) {
        return Err(sdp_err(format!("conflicting a={name}")));
    }
    Ok(first)
}

fn check_media_line(value: &str) -> Result<(), SignalError> {
    let parts: Vec<&str> = value.split(' ').collect();
    let [media, port, proto, formats @ ..] = parts.as_slice() else {
        return Err(sdp_err("short m= line"));
    };
    if *media != "application" {
        return Err(sdp_err(format!(
            "m={media} (only data channels are allowed)"
        )));
    }
    if port.parse::<u16>().is_err() {
        return Err(sdp_err("bad m= port"));
    }
    let sctp_new =
        matches!(*proto, "UDP/DTLS/SCTP" | "TCP/DTLS/SCTP") && formats == ["webrtc-datachannel"];
    let sctp_old = *proto == "DTLS/SCTP" && formats.len() == 1 && formats[0].parse::<u16>().is_ok();
    if !(sctp_new || sctp_old) {
        return Err(sdp_err("m=application is not an SCTP data channel"));
    }
    Ok(())
}

fn check_fingerprint(value: &str) -> Result<(), SignalError> {
    let Some((hash, hex)) = value.split_once(' ') else {
        return Err(sdp_err("bad fingerprint"));
    };
    let bytes = match hash.to_ascii_lowercase().as_str() {
        "sha-1" => 20,
        "sha-224" => 28,
        "sha-256" => 32,
        "sha-384" => 48,
        "sha-512" => 64,
        _ => return Err(sdp_err("unknown fingerprint hash")),
    };
    let pairs: Vec<&str> = hex.split(':').collect();
    if pairs.len() != bytes
        || !pairs
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(sdp_err("bad fingerprint value"));
    }
    Ok(())
}

fn is_ice_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Check one candidate attribute value (`foundation component transport priority address port
/// typ type [key value]…`, RFC 8839 §5.1), with or without its `candidate:` prefix.
pub fn check_candidate_line(value: &str) -> Result<(), SignalError> {
    let value = value.strip_prefix("candidate:").unwrap_or(value);
    let parts: Vec<&str> = value.split(' ').collect();
    let [
        foundation,
        component,
        transport,
        priority,
        address,
        port,
        typ,
        kind,
        rest @ ..,
    ] = parts.as_slice()
    else {
        return Err(cand_err("too few fields"));
    };
    if foundation.is_empty() || foundation.len() > 32 || !foundation.bytes().all(is_ice_char) {
        return Err(cand_err("bad foundation"));
    }
    if !matches!(component.parse::<u16>(), Ok(1..=256)) {
        return Err(cand_err("bad component"));
    }
    if !transport.eq_ignore_ascii_case("udp") && !transport.eq_ignore_ascii_case("tcp") {
        return Err(cand_err("bad transport"));
    }
    if priority.parse::<u32>().is_err() {
        return Err(cand_err("bad priority"));
    }
    check_address(address)?;
    if port.parse::<u16>().is_err() {
        return Err(cand_err("bad port"));
    }
    if *typ != "typ" || !matches!(*kind, "host" | "srflx" | "prflx" | "relay") {
        return Err(cand_err("bad candidate type"));
    }
    if rest.len() % 2 != 0 || rest.len() > 32 {
        return Err(cand_err("bad extension fields"));
    }
    for pair in rest.chunks(2) {
        let (key, val) = (pair[0], pair[1]);
        let token = |s: &str| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| (0x21..0x7f).contains(&b))
        };
        if !token(key) || !token(val) {
            return Err(cand_err("bad extension field"));
        }
        match key {
            "raddr" => check_address(val)?,
            "rport" if val.parse::<u16>().is_err() => return Err(cand_err("bad rport")),
            "tcptype" if !matches!(val, "active" | "passive" | "so") => {
                return Err(cand_err("bad tcptype"));
            }
            _ => {}
        }
    }
    native::parse_candidate(value)
}

/// An IP address, or an mDNS host name (`<uuid>.local`) as browsers emit for host candidates.
fn check_address(address: &str) -> Result<(), SignalError> {
    if address.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name_ok = address.len() <= 253
        && address.ends_with(".local")
        && address.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if name_ok {
        Ok(())
    } else {
        Err(cand_err("bad address"))
    }
}

/// Check a trickled candidate as matchbox carries it: the JSON of an `RTCIceCandidateInit`
/// (`candidate`, optional `sdpMid`, `sdpMLineIndex`, `usernameFragment`), or `null`.
pub fn check_candidate_json(json: &str) -> Result<(), SignalError> {
    if json.len() > CANDIDATE_BYTES_MAX {
        return Err(SignalError::TooLarge {
            what: "ICE candidate",
            bytes: json.len(),
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| cand_err(format!("not JSON: {e}")))?;
    let object = match value {
        serde_json::Value::Null => return Ok(()),
        serde_json::Value::Object(o) => o,
        _ => return Err(cand_err("not an object")),
    };
    let mut candidate = None;
    for (key, v) in &object {
        match (key.as_str(), v) {
            ("candidate", serde_json::Value::String(s)) => candidate = Some(s.as_str()),
            ("sdpMid" | "usernameFragment", serde_json::Value::String(s)) if s.len() <= 256 => {}
            ("sdpMLineIndex", serde_json::Value::Number(n))
                if n.as_u64().is_some_and(|i| i <= u64::from(u16::MAX)) => {}
            ("sdpMid" | "usernameFragment" | "sdpMLineIndex", serde_json::Value::Null) => {}
            _ => return Err(cand_err(format!("unexpected field {key:?}"))),
        }
    }
    match candidate {
        // An empty candidate marks the end of candidates (browsers send it).
        Some("") => Ok(()),
        Some(c) => check_candidate_line(c),
        None => Err(cand_err("no candidate field")),
    }
}

/// Natively, also run the parsers webrtc-rs uses inside matchbox.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::{SignalError, cand_err, sdp_err};

    pub(super) fn parse_sdp(sdp: &str) -> Result<(), SignalError> {
        let mut reader = std::io::Cursor::new(sdp.as_bytes());
        rtc_sdp::SessionDescription::unmarshal(&mut reader)
            .map(|_| ())
            .map_err(|e| sdp_err(format!("rtc-sdp: {e}")))
    }

    pub(super) fn parse_candidate(value: &str) -> Result<(), SignalError> {
        rtc_ice::candidate::unmarshal_candidate(value)
            .map(|_| ())
            .map_err(|e| cand_err(format!("rtc-ice: {e}")))
    }
}

/// In the browser the structural checks above are all we have (the browser parses itself).
#[cfg(target_arch = "wasm32")]
mod native {
    use super::SignalError;

    pub(super) fn parse_sdp(_sdp: &str) -> Result<(), SignalError> {
        Ok(())
    }

    pub(super) fn parse_candidate(_value: &str) -> Result<(), SignalError> {
        Ok(())
    }
}

/// Sample signalling for tests of this module and of the signalling server.
#[cfg(test)]
pub(crate) mod tests_support {
    /// An Offer as matchbox native produces it (webrtc-rs 0.21), data channels only.
    pub const OFFER: &str = "v=0\r\no=- 1234567890 1234567890 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:A4:1F:1B:E5:00:94:93:5B:2C:40:41:6C:8B:8C:66:3A:00:64:E6:47:B5:70:A3\r\n\
a=extmap-allow-mixed\r\na=group:BUNDLE 0\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=mid:0\r\n\
a=sendrecv\r\na=sctp-port:5000\r\na=ice-ufrag:yxYbdcQyAqTtFZsl\r\na=ice-pwd:VJhRRoQzrWPqdwGJVJQpbeVNIGCjsHdz\r\n\
a=candidate:1234 1 udp 2130706431 192.0.2.2 50000 typ host\r\n";
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::tests_support::OFFER;

    #[test]
    fn a_real_offer_passes() {
        check_sdp(OFFER, false).expect("valid offer");
        let answer = OFFER.replace("setup:actpass", "setup:active");
        check_sdp(&answer, true).expect("valid answer");
        assert!(check_sdp(OFFER, true).is_err(), "actpass is not an answer");
    }

    #[test]
    fn malformed_sdp_is_rejected() {
        let cases: Vec<String> = vec![
            String::new(),
            "hello".into(),
            "v=0\r\nhello".into(),
            OFFER.replace(
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
                "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            ),
            OFFER.replace("a=mid:0\r\n", ""),
            OFFER.replace("a=ice-ufrag:yxYbdcQyAqTtFZsl\r\n", ""),
            OFFER.replace(
                "a=ice-pwd:VJhRRoQzrWPqdwGJVJQpbeVNIGCjsHdz",
                "a=ice-pwd:short",
            ),
            OFFER.replace("sha-256 0F:74", "sha-999 0F:74"),
            OFFER.replace("a=fingerprint", "a=x-fingerprint"),
            OFFER.replace("typ host", "typ martian"),
            OFFER.replace("192.0.2.2", "not-an-address"),
            format!("{OFFER}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"),
            format!("{OFFER}a=x:{}\r\n", "y".repeat(SDP_BYTES_MAX)),
            OFFER.replace("s=-", "s=\u{1}"),
        ];
        for (i, sdp) in cases.iter().enumerate() {
            assert!(
                check_sdp(sdp, false).is_err(),
                "case {i} should be rejected"
            );
        }
    }

    #[test]
    fn candidates_json() {
        let ok = r#"{"candidate":"candidate:1 1 udp 2130706431 192.0.2.2 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null}"#;
        check_candidate_json(ok).expect("valid");
        check_candidate_json("null").expect("end of candidates");
        check_candidate_json(r#"{"candidate":""}"#).expect("end of candidates");
        let mdns = r#"{"candidate":"candidate:1 1 udp 2130706431 1f2e3d4c-aaaa.local 5000 typ host generation 0"}"#;
        check_candidate_json(mdns).expect("mdns host");
        for bad in [
            "",
            "{",
            "[]",
            r#"{"candidate":5}"#,
            r#"{"sdpMid":"0"}"#,
            r#"{"candidate":"candidate:1 1 udp 1 192.0.2.2 5000 typ host","evil":1}"#,
            r#"{"candidate":"garbage"}"#,
            r#"{"candidate":"candidate:1 1 udp 1 192.0.2.2 99999 typ host"}"#,
        ] {
            assert!(
                check_candidate_json(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
