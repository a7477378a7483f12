//! The embedded web server for the browser build of the sandbox: static files from one directory
//! (`web/`: `index.html`, the glue, and `pkg/` from `scripts/build-web.sh`), GET only.
//!
//! Deliberately small (std only, a thread per connection, HTTP/1.0 semantics: one request per
//! connection): it serves a handful of files to the players on this machine. Request heads are
//! capped at [`HEAD_BYTES_MAX`] and read with a timeout; paths are plain relative names (no `..`,
//! no hidden files), so nothing outside the directory can be named.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Longest request head read.
pub const HEAD_BYTES_MAX: usize = 8 * 1024;
/// Connections served at once; more are closed at once.
const CONNECTIONS_MAX: usize = 64;

/// The file the browser build must contain for the server to start.
pub const BUILD_MARKER: &str = "pkg/meshwork_sandbox.js";

/// A running web server.
#[derive(Debug)]
pub struct WebServer {
    addr: SocketAddr,
}

impl WebServer {
    /// Binds `bind` and serves `dir` on a background thread, and `extra` (relative path,
    /// bytes) from memory ahead of the files.
    pub fn start_with(
        bind: SocketAddr,
        dir: PathBuf,
        extra: Vec<(String, Vec<u8>)>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let dir = Arc::new(dir);
        let extra = Arc::new(extra);
        let live = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("web".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    if live.load(Ordering::Relaxed) >= CONNECTIONS_MAX {
                        continue;
                    }
                    live.fetch_add(1, Ordering::Relaxed);
                    let (dir, live, extra) = (dir.clone(), live.clone(), extra.clone());
                    let spawned =
                        std::thread::Builder::new()
                            .name("web-conn".into())
                            .spawn(move || {
                                let _ = serve(stream, &dir, &extra);
                                live.fetch_sub(1, Ordering::Relaxed);
                            });
                    if spawned.is_err() {
                        tracing::warn!("web: cannot spawn a connection thread");
                    }
                }
            })?;
        Ok(Self { addr })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Whether `dir` holds a browser build.
pub fn has_build(dir: &Path) -> bool {
    dir.join(BUILD_MARKER).is_file()
}

fn serve(mut stream: TcpStream, dir: &Path, extra: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > HEAD_BYTES_MAX {
            return respond(&mut stream, 431, "text/plain", b"request head too large");
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, 405, "text/plain", b"GET only");
    }
    let Some(rel) = resolve(target) else {
        return respond(&mut stream, 404, "text/plain", b"not found");
    };
    let from_memory = extra
        .iter()
        .find(|(p, _)| *p == rel)
        .map(|(_, b)| b.clone());
    match from_memory.map_or_else(|| std::fs::read(dir.join(&rel)), Ok) {
        Ok(body) => {
            let body = if method == "HEAD" { Vec::new() } else { body };
            respond(&mut stream, 200, content_type(&rel), &body)
        }
        Err(_) => respond(&mut stream, 404, "text/plain", b"not found"),
    }
}

/// The relative file a request target names: `/` is `index.html`; the query is ignored; only
/// `[A-Za-z0-9._-]` path segments that do not start with a dot.
pub fn resolve(target: &str) -> Option<String> {
    let path = target.split(['?', '#']).next()?;
    let path = path.strip_prefix('/')?;
    if path.is_empty() {
        return Some("index.html".into());
    }
    let ok = path.split('/').all(|seg| {
        !seg.is_empty()
            && !seg.starts_with('.')
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    });
    ok.then(|| path.to_string())
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn respond(stream: &mut TcpStream, status: u16, kind: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_names_resolve() {
        assert_eq!(resolve("/").as_deref(), Some("index.html"));
        assert_eq!(
            resolve("/?signalling=ws://x").as_deref(),
            Some("index.html")
        );
        assert_eq!(
            resolve("/pkg/meshwork_sandbox_bg.wasm").as_deref(),
            Some("pkg/meshwork_sandbox_bg.wasm")
        );
        for bad in [
            "",
            "x",
            "/../etc/passwd",
            "/pkg/../../x",
            "/.git/config",
            "//x",
            "/a b",
            "/%2e%2e/x",
        ] {
            assert_eq!(resolve(bad), None, "{bad}");
        }
    }

    #[test]
    fn serves_files_and_refuses_the_rest() {
        let dir = std::env::temp_dir().join(format!("meshwork-web-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pkg")).expect("temp dir");
        std::fs::write(dir.join("index.html"), b"<p>hi</p>").expect("write");
        std::fs::write(dir.join("pkg/a.wasm"), b"\0asm").expect("write");
        let server = WebServer::start_with(
            "127.0.0.1:0".parse().expect("addr"),
            dir.clone(),
            vec![("ledger.bin".into(), b"setup".to_vec())],
        )
        .expect("binds");
        let get = |target: &str| {
            let mut s = TcpStream::connect(server.addr()).expect("connects");
            write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").expect("writes");
            let mut out = String::new();
            s.read_to_string(&mut out).expect("reads");
            out
        };
        let index = get("/");
        assert!(index.starts_with("HTTP/1.1 200"), "{index}");
        assert!(index.ends_with("<p>hi</p>"));
        let wasm = get("/pkg/a.wasm");
        assert!(wasm.contains("Content-Type: application/wasm"), "{wasm}");
        assert!(get("/../Cargo.toml").starts_with("HTTP/1.1 404"));
        assert!(get("/missing.js").starts_with("HTTP/1.1 404"));
        let setup = get("/ledger.bin");
        assert!(
            setup.starts_with("HTTP/1.1 200") && setup.ends_with("setup"),
            "{setup}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
