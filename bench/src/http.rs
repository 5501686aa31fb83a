//! Just enough HTTP/1.1 to drive etcd's JSON gateway: one keep-alive connection, POST with a
//! body, a response with Content-Length or chunked encoding. Every length the server sends is
//! bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const HEADER_LINE_BYTES_MAX: u64 = 8 * 1024;
const HEADER_LINES_MAX: usize = 64;
const BODY_BYTES_MAX: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

pub struct HttpConnection {
    reader: BufReader<TcpStream>,
    host: String,
    request: Vec<u8>,
}

impl HttpConnection {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<HttpConnection, String> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|err| format!("connect to {addr}: {err}"))?;
        stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(timeout)))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|err| format!("{addr}: {err}"))?;
        Ok(HttpConnection {
            reader: BufReader::with_capacity(16 * 1024, stream),
            host: addr.to_string(),
            request: Vec::with_capacity(512),
        })
    }

    /// One POST of a JSON body and its complete answer, on the kept-alive connection.
    pub fn post_json(&mut self, path: &str, body: &[u8]) -> Result<HttpResponse, String> {
        self.request.clear();
        write!(
            self.request,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .map_err(|err| err.to_string())?;
        self.request.extend_from_slice(body);
        self.reader
            .get_mut()
            .write_all(&self.request)
            .map_err(|err| format!("send: {err}"))?;
        read_response(&mut self.reader)
    }
}

/// Reads one response: status line, headers, then the body by Content-Length or chunks.
pub fn read_response<R: BufRead>(reader: &mut R) -> Result<HttpResponse, String> {
    let status_line = read_line(reader)?;
    let status = parse_status_line(&status_line)?;
    let mut content_length = None;
    let mut chunked = false;
    for _ in 0..HEADER_LINES_MAX {
        let line = read_line(reader)?;
        if line.is_empty() {
            let body = if chunked {
                read_chunked(reader)?
            } else {
                read_exact_body(reader, content_length.unwrap_or(0))?
            };
            return Ok(HttpResponse { status, body });
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let length: usize = value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    Err(format!("more than {HEADER_LINES_MAX} header lines"))
}

fn parse_status_line(line: &str) -> Result<u16, String> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x status line: {line:?}"));
    }
    code.parse()
        .map_err(|_| format!("bad status code in {line:?}"))
}

/// One line without its CRLF, at most `HEADER_LINE_BYTES_MAX` bytes.
fn read_line<R: BufRead>(reader: &mut R) -> Result<String, String> {
    let mut line = Vec::new();
    let read = reader
        .by_ref()
        .take(HEADER_LINE_BYTES_MAX)
        .read_until(b'\n', &mut line)
        .map_err(|err| format!("receive: {err}"))?;
    if read == 0 {
        return Err("connection closed by the server".to_string());
    }
    if line.last() != Some(&b'\n') {
        return Err(format!(
            "header line longer than {HEADER_LINE_BYTES_MAX} bytes"
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| "header line is not UTF-8".to_string())
}

fn read_exact_body<R: BufRead>(reader: &mut R, length: usize) -> Result<Vec<u8>, String> {
    if length > BODY_BYTES_MAX {
        return Err(format!("body of {length} bytes exceeds {BODY_BYTES_MAX}"));
    }
    let mut body = vec![0u8; length];
    reader
        .read_exact(&mut body)
        .map_err(|err| format!("receive body: {err}"))?;
    Ok(body)
}

fn read_chunked<R: BufRead>(reader: &mut R) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(reader)?;
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_line:?}"))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            for _ in 0..HEADER_LINES_MAX {
                if read_line(reader)?.is_empty() {
                    return Ok(body);
                }
            }
            return Err(format!("more than {HEADER_LINES_MAX} trailer lines"));
        }
        if body.len() + size > BODY_BYTES_MAX {
            return Err(format!("chunked body exceeds {BODY_BYTES_MAX} bytes"));
        }
        body.extend(read_exact_body(reader, size)?);
        if !read_line(reader)?.is_empty() {
            return Err("chunk not followed by CRLF".to_string());
        }
    }
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what etcd's gateway expects for `bytes` fields).
pub fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let group = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for position in 0..4 {
            if position <= chunk.len() {
                let index = (group >> (18 - 6 * position)) & 0x3f;
                out.push(char::from(BASE64_ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64_encode(&[0xff, 0xfe, 0xfd]), "//79");
    }

    fn parse(raw: &str) -> Result<HttpResponse, String> {
        read_response(&mut std::io::Cursor::new(raw.as_bytes().to_vec()))
    }

    #[test]
    fn reads_a_content_length_response_and_leaves_the_next_one() {
        let raw =
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhelloHTTP/1.1 404 No\r\n\r\n";
        let mut reader = std::io::Cursor::new(raw.as_bytes().to_vec());
        let first = read_response(&mut reader).expect("first");
        assert_eq!(
            first,
            HttpResponse {
                status: 200,
                body: b"hello".to_vec()
            }
        );
        let second = read_response(&mut reader).expect("second");
        assert_eq!(
            second,
            HttpResponse {
                status: 404,
                body: Vec::new()
            }
        );
    }

    #[test]
    fn reads_a_chunked_response() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse(raw).expect("chunked").body, b"abcde".to_vec());
    }

    #[test]
    fn refuses_hostile_or_broken_responses() {
        assert!(parse("").is_err());
        assert!(parse("SSH-2.0\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
        let long_line = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(10_000));
        assert!(parse(&long_line).is_err());
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "A: b\r\n".repeat(100));
        assert!(parse(&many).is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
    }
}
