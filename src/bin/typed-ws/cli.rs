//! The command line: subcommands, options, their parsers and the help text.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use typed_ws::http::{HeaderName, HeaderValue, Uri};
use typed_ws::{AnyConverter, Compression, Config, Negotiation};

const EXIT_CODES: &str = "\
Exit codes:
  0  success: stdin ended and the session closed, or the server closed it with
     1000, 1001 or no code; serve stopped by Ctrl-C or SIGTERM
  1  could not connect or listen (refused, unreachable, HTTP status, TLS), or
     stdin/stdout failed
  2  usage error
  3  the session ended abnormally: another close code, the connection dropped,
     a timeout, a protocol error, a message over the size limits";

const CONNECT_EXIT_CODES: &str = "\
Exit codes: 0 clean close, 1 connection or I/O failure, 2 usage error,
3 session ended abnormally (close code other than 1000/1001, timeout, ...).
More with --help.";

const CONNECT_LONG_HELP: &str = "\
Each non-empty stdin line is one JSON value, sent encoded with the codec; a line
that is not JSON is reported on stderr and skipped. Each message received prints
as one JSON line; one that does not decode is reported on stderr and skipped.
What JSON lacks prints as:
  byte string               {\"$bytes\":\"<base64>\"}
  non-string map key        its JSON text: 1 -> \"1\", [1,2] -> \"[1,2]\"
  CBOR tag                  {\"$tag\":N,\"$value\":V}
  MessagePack extension     {\"$ext\":TYPE,\"$bytes\":\"<base64>\"}
  NaN, infinity             null
  integer beyond 64 bits    its digits (CBOR)
At the end of stdin the session closes with 1000; messages the server sends
before it answers the close are still printed.

Examples:
  echo '{\"id\":1}' | typed-ws connect ws://127.0.0.1:8080/ --codec cbor
  typed-ws connect ws://localhost:9000/rpc --codec msgpack,json -H 'Authorization: Bearer T'

Exit codes:
  0  stdin ended and the session closed, or the server closed it with 1000,
     1001 or no code
  1  could not connect (refused, unreachable, HTTP status, TLS), or
     stdin/stdout failed
  2  usage error
  3  the session ended abnormally: another close code, the connection dropped,
     a timeout, a protocol error, a message over the size limits";

const SERVE_EXIT_CODES: &str = "\
Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 cannot listen, 2 usage error.
More with --help.";

const SERVE_LONG_HELP: &str = "\
Each message is decoded with the session's codec and sent back re-encoded. A
message that does not decode closes its session with 1007, one of the wrong
frame type (binary for json, text for cbor and msgpack) with 1003; other
sessions go on. Prints `listening on ws://ADDR` on stdout when ready (with the
path, if --path is given).

Ctrl-C or SIGTERM shuts it down: it stops accepting, closes every session with
1001 once the messages it has received are answered, waits up to 10 s for the
clients' answers, and exits.

Example:
  typed-ws serve --addr 127.0.0.1:8080 --codec msgpack,cbor,json

Exit codes:
  0  stopped by Ctrl-C or SIGTERM
  1  could not listen on the address
  2  usage error";

/// Typed WebSocket sessions from the shell: JSON lines in and out, JSON, CBOR or
/// MessagePack on the wire.
#[derive(Debug, Parser)]
#[command(name = "typed-ws", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to a server: send stdin's JSON lines, print received messages as JSON lines
    #[command(after_help = CONNECT_EXIT_CODES, after_long_help = CONNECT_LONG_HELP)]
    Connect(ConnectArgs),
    /// Run an echo server that decodes and re-encodes every message
    #[command(after_help = SERVE_EXIT_CODES, after_long_help = SERVE_LONG_HELP)]
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The server: ws://HOST:PORT/PATH (wss:// needs a build with the tls feature)
    #[arg(value_name = "URL", value_parser = parse_url)]
    pub url: String,

    /// Codec: json, cbor or msgpack, or a list to negotiate (msgpack,cbor,json)
    ///
    /// The codecs are offered as subprotocols (Sec-WebSocket-Protocol) in that order, and the
    /// server's choice decides which codec the session uses; a server that speaks none of them
    /// is a connection failure. One codec is also used with a server that answers with no
    /// subprotocol (one that does not negotiate), so it works with any server that speaks it.
    #[arg(long, value_name = "CODEC[,...]", default_value = "json", value_parser = parse_codecs)]
    pub codec: Codecs,

    /// Offer the codecs as subprotocols PREFIX.json, PREFIX.cbor, ...
    #[arg(long, value_name = "PREFIX")]
    pub subprotocol_prefix: Option<String>,

    /// Add a header to the handshake request (repeatable)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<Header>,

    /// Also offer this subprotocol, after the codecs (repeatable)
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocols: Vec<String>,

    /// Connect again when the connection is lost or refused for a reason that may pass
    ///
    /// Retried: refused or dropped connections, timeouts, closes with 1001, 1006, 1011, 1012,
    /// 1013 and HTTP 5xx answers, after a delay drawn from 0 to 1 s, doubling with each
    /// failure up to 30 s (at least 5 s after 1012 and 1013). Anything else ends the run as
    /// it would without the flag. Each connection and each wait prints one line on stderr;
    /// stdin lines, and its end, wait while disconnected.
    #[arg(long)]
    pub reconnect: bool,

    #[command(flatten)]
    pub session: SessionArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on; port 0 picks a free one
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080", value_parser = parse_addr)]
    pub addr: SocketAddr,

    /// Codec: json, cbor or msgpack, or a list to negotiate (msgpack,cbor,json)
    ///
    /// Each session uses the first codec of the list that its client offers as a subprotocol
    /// (Sec-WebSocket-Protocol); a client that offers none gets the first codec, one that
    /// offers only others is refused with HTTP 400.
    #[arg(long, value_name = "CODEC[,...]", default_value = "json", value_parser = parse_codecs)]
    pub codec: Codecs,

    /// Name the codecs' subprotocols PREFIX.json, PREFIX.cbor, ...
    #[arg(long, value_name = "PREFIX")]
    pub subprotocol_prefix: Option<String>,

    /// Accept sessions only on this path; other paths get HTTP 404
    #[arg(long, value_name = "/PATH", value_parser = parse_path)]
    pub path: Option<String>,

    #[command(flatten)]
    pub session: SessionArgs,
}

/// What both subcommands set on their sessions.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Send a ping every SECS seconds (fractions allowed; 0: off) [default: 20]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub ping_interval: Option<Duration>,

    /// End the session after SECS seconds without a frame from the peer [default: 40]
    ///
    /// 0 turns it off. With --ping-interval shorter than it, a live peer always answers in
    /// time. The opening handshake has its own deadline of 10 s.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Duration>,

    /// Largest incoming message, in bytes; K, M, G for KiB, MiB, GiB [default: 64M]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_message_size: Option<usize>,

    /// Largest incoming frame, in bytes; K, M, G for KiB, MiB, GiB [default: 16M]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_frame_size: Option<usize>,

    /// Compress messages with permessage-deflate (RFC 7692) when the peer agrees
    ///
    /// connect offers it; serve accepts it from clients that offer it, as browsers do.
    #[arg(long)]
    pub compress: bool,
}

impl SessionArgs {
    /// Applies the options that were given; the library's defaults stand for the others.
    pub fn apply<C>(&self, mut config: Config<C>) -> Config<C> {
        if let Some(interval) = self.ping_interval {
            config = config.ping_interval(interval);
        }
        if let Some(timeout) = self.timeout {
            config = config.timeout(timeout);
        }
        if let Some(bytes) = self.max_message_size {
            config = config.max_message_size(bytes);
        }
        if let Some(bytes) = self.max_frame_size {
            config = config.max_frame_size(bytes);
        }
        if self.compress {
            config = config.compression(Compression::new());
        }
        config
    }
}

/// The codecs of `--codec`, in order of preference; never empty.
#[derive(Debug, Clone)]
pub struct Codecs(Vec<AnyConverter>);

impl Codecs {
    /// The most preferred codec.
    pub fn first(&self) -> AnyConverter {
        self.0[0]
    }

    /// The codecs to negotiate, in order, named with the prefix if one is given; a single
    /// codec is also the fallback of a client whose server answers with no subprotocol.
    pub fn client_negotiation(&self, prefix: Option<&str>) -> Negotiation {
        let negotiation = self.negotiation(prefix);
        match self.0.as_slice() {
            // Which one of a list a plain server speaks is anyone's guess.
            [single] => negotiation.fallback(*single),
            _ => negotiation,
        }
    }

    /// The codecs to negotiate, in order, named with the prefix if one is given.
    pub fn negotiation(&self, prefix: Option<&str>) -> Negotiation {
        let mut negotiation = Negotiation::prefer(self.first());
        for &codec in &self.0[1..] {
            negotiation = negotiation.then(codec);
        }
        match prefix {
            Some(prefix) => negotiation.prefix(prefix),
            None => negotiation,
        }
    }
}

/// A header of `--header 'Name: value'`.
#[derive(Debug, Clone)]
pub struct Header {
    pub name: String,
    pub value: String,
}

fn parse_codecs(list: &str) -> Result<Codecs, String> {
    let mut codecs: Vec<AnyConverter> = Vec::new();
    for name in list.split(',').map(str::trim) {
        let codec = AnyConverter::from_name(name).map_err(|e| e.to_string())?;
        if codecs.contains(&codec) {
            return Err(format!("{name} is listed twice"));
        }
        codecs.push(codec);
    }
    Ok(Codecs(codecs))
}

fn parse_url(url: &str) -> Result<String, String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("ws" | "wss") => {}
        _ => return Err("the URL must start with ws:// or wss://".to_owned()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(url.to_owned())
}

fn parse_header(header: &str) -> Result<Header, String> {
    let (name, value) = header.split_once(':').ok_or("expected 'Name: value'")?;
    let (name, value) = (name.trim(), value.trim());
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("bad header name {name:?}"))?;
    HeaderValue::from_str(value).map_err(|_| format!("bad header value {value:?}"))?;
    Ok(Header {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

fn parse_addr(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("expected HOST:PORT ({e})"))?
        .next()
        .ok_or_else(|| format!("{addr} resolves to no address"))
}

fn parse_path(path: &str) -> Result<String, String> {
    if path.starts_with('/') {
        Ok(path.to_owned())
    } else {
        Err("the path must start with /".to_owned())
    }
}

fn parse_secs(secs: &str) -> Result<Duration, String> {
    let secs: f64 = secs
        .parse()
        .map_err(|_| "expected a number of seconds".to_owned())?;
    Duration::try_from_secs_f64(secs).map_err(|_| "expected a number of seconds, 0 or more".into())
}

fn parse_size(size: &str) -> Result<usize, String> {
    let (digits, shift) = match size.char_indices().last() {
        Some((i, 'k' | 'K')) => (&size[..i], 10),
        Some((i, 'm' | 'M')) => (&size[..i], 20),
        Some((i, 'g' | 'G')) => (&size[..i], 30),
        _ => (size, 0),
    };
    let bad = || "expected a number of bytes, optionally with K, M or G".to_owned();
    let number: usize = digits.parse().map_err(|_| bad())?;
    number.checked_mul(1 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("K").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn headers_split_at_the_first_colon() {
        let header = parse_header("X-Time: 12:30").unwrap();
        assert_eq!(
            (header.name.as_str(), header.value.as_str()),
            ("X-Time", "12:30")
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }
}
