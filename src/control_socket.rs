//! The control socket: how the CLI reaches a gateway running on the same
//! machine, so that what it changes takes effect there at once, whatever
//! the token backend. With `tokens.kind: memory` the access tokens live in
//! the gateway's memory, which a second process cannot reach: the CLI's
//! password change, disable or removal must be done by the gateway itself.
//!
//! The gateway listens on `data_dir/control.sock`, a Unix socket of mode
//! 0600, and answers the management API there (the same operations, the
//! same audit lines). Being able to open the socket is the credential: it
//! takes the gateway's own user (or root), as reading its database would.
//! When nothing listens there (no gateway running, or a stale socket), the
//! CLI works on the stores directly, as before.
//!
//! This file is the client side: one HTTP/1.1 request per connection, with
//! a bounded wait, on a blocking socket (the CLI does one thing at a time).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// The socket's file name in `data_dir`.
pub const SOCKET_NAME: &str = "control.sock";

/// How long the CLI waits for the gateway's answer. A password change
/// costs one bcrypt; ten seconds is far above any.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Answers are small JSON documents; a larger one is not the gateway's.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// A gateway that answered on its control socket.
pub struct ControlClient {
    path: PathBuf,
}

/// An answer of the management API: its status and JSON body (`Null` when
/// empty).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl ControlClient {
    /// The running gateway at `path`; `None` when none listens there (no
    /// socket, or a stale one). A socket this user may not open is an
    /// error, not "no gateway": working on the store behind a running
    /// gateway's back would leave its memory tokens unrevoked.
    pub fn find(path: &Path) -> Result<Option<ControlClient>, String> {
        match UnixStream::connect(path) {
            Ok(_) => Ok(Some(ControlClient {
                path: path.to_path_buf(),
            })),
            Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
                "cannot open the running gateway's control socket {} ({error}); run as the user the gateway runs as",
                path.display()
            )),
            Err(_) => Ok(None),
        }
    }

    /// One request to the management API (`path` under `/api/v1`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let mut stream = UnixStream::connect(&self.path)
            .map_err(|e| format!("cannot reach the gateway's control socket: {e}"))?;
        stream
            .set_read_timeout(Some(ANSWER_WITHIN))
            .and_then(|()| stream.set_write_timeout(Some(ANSWER_WITHIN)))
            .map_err(|e| e.to_string())?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            crate::management::API_PREFIX,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("cannot write to the control socket: {e}"))?;
        let mut raw = Vec::new();
        stream
            .take(MAX_ANSWER_BYTES as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("no answer from the gateway within {ANSWER_WITHIN:?}: {e}"))?;
        parse_answer(&raw)
    }
}

/// Parses an HTTP/1.1 response read to its end (`Connection: close`).
fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let malformed = |why: &str| format!("the gateway's answer is malformed: {why}");
    if raw.len() > MAX_ANSWER_BYTES {
        return Err(malformed("too large"));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| malformed("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| malformed("head is not text"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| malformed("no status line"))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest).ok_or_else(|| malformed("bad chunked body"))?
    } else {
        rest.to_vec()
    };
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|_| malformed("the body is not JSON"))?
    };
    Ok(Answer { status, body })
}

/// The payload of a chunked body (RFC 9112 §7.1), trailers ignored.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_plain_or_chunked() {
        let cases: [(&[u8], u16, Value); 4] = [
            (
                b"HTTP/1.1 201 Created\r\ncontent-length: 11\r\n\r\n{\"id\":\"u\"}",
                201,
                serde_json::json!({"id": "u"}),
            ),
            (b"HTTP/1.1 204 No Content\r\n\r\n", 204, Value::Null),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[1,2\r\n1\r\n]\r\n0\r\n\r\n",
                200,
                serde_json::json!([1, 2]),
            ),
            (
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}",
                404,
                serde_json::json!({}),
            ),
        ];
        for (raw, status, body) in cases {
            let answer = parse_answer(raw).unwrap();
            assert_eq!((answer.status, answer.body), (status, body));
        }
        for bad in [
            &b"garbage"[..],
            b"HTTP/1.1 200 OK\r\n\r\nnot json",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse_answer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nothing_listening_means_no_gateway() {
        let folder = tempfile::tempdir().unwrap();
        let path = socket_path(folder.path());
        assert!(ControlClient::find(&path).unwrap().is_none());
        // A stale socket file left by a gateway that died.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        assert!(ControlClient::find(&path).unwrap().is_none());
    }
}
