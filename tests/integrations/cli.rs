//! End-to-end tests of the `typed-ws` command-line tool: the real binary, real sockets.
#![cfg(feature = "cli")]

use std::collections::BTreeMap;
use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use typed_ws::{
    CborConverter, Client, CloseCode, CloseReason, Compression, Config, Converter, Frame,
    JsonConverter, MsgPackConverter, Negotiation, Server, Session,
};

const BIN: &str = env!("CARGO_BIN_EXE_typed-ws");

/// Every await on a process or the network is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {LIMIT:?}: {what}"),
    }
}

// ---- running the binary ----

/// A running `typed-ws serve`, killed when dropped.
struct Serve {
    _child: Child,
    /// `ws://127.0.0.1:PORT`, without the path.
    base: String,
}

/// Starts `typed-ws serve` on a free port and waits for its `listening on` line.
async fn serve(args: &[&str]) -> Serve {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start typed-ws serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = within(
        "the listening line",
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("read serve's stdout")
    .expect("serve ended before it was ready");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let host_end = url["ws://".len()..]
        .find('/')
        .map_or(url.len(), |i| i + "ws://".len());
    Serve {
        _child: child,
        base: url[..host_end].to_owned(),
    }
}

/// How a `typed-ws connect` run ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// Asserts exactly one stderr line, in the tool's format, and gives it.
    fn one_error_line(&self) -> &str {
        let lines = self.stderr_lines();
        assert_eq!(lines.len(), 1, "expected one stderr line: {self:#?}");
        assert!(lines[0].starts_with("typed-ws: "), "{self:#?}");
        lines[0]
    }
}

/// Runs `typed-ws ARGS` with `input` on stdin, closed afterwards (end of input) or, with
/// `keep_stdin_open`, held open until the process has ended by itself.
async fn run(args: &[&str], input: &str, keep_stdin_open: bool) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start typed-ws");
    let mut stdin = child.stdin.take().expect("piped stdin");
    match within("writing stdin", stdin.write_all(input.as_bytes())).await {
        Ok(()) => {}
        // A run that fails before it reads (a refused handshake) has closed its stdin.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => panic!("write stdin: {e}"),
    }
    let held = if keep_stdin_open {
        Some(stdin)
    } else {
        drop(stdin);
        None
    };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (mut out, mut err) = (String::new(), String::new());
    let (read_out, read_err, status) = within("typed-ws to exit", async {
        tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err),
            child.wait()
        )
    })
    .await;
    read_out.expect("read stdout");
    read_err.expect("read stderr");
    drop(held);
    Run {
        code: status.expect("wait for typed-ws").code(),
        stdout: out,
        stderr: err,
    }
}

async fn connect(url: &str, options: &[&str], input: &str) -> Run {
    let args: Vec<&str> = ["connect", url].iter().chain(options).copied().collect();
    run(&args, input, false).await
}

/// Like [`connect`], but stdin stays open: the server is what ends the session.
async fn connect_until_server_closes(url: &str, options: &[&str]) -> Run {
    let args: Vec<&str> = ["connect", url].iter().chain(options).copied().collect();
    run(&args, "", true).await
}

// ---- servers written with the library ----

/// Accepts one session on a free port and runs `handler` with it; gives the URL and the
/// task, to be awaited so that the handler's assertions count.
async fn serve_once<C, F, Fut>(config: Config<C>, handler: F) -> (String, JoinHandle<()>)
where
    C: Converter,
    F: FnOnce(Session<C>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("local addr"));
    let task = tokio::spawn(async move {
        let (tcp, _) = within("a connection", listener.accept())
            .await
            .expect("accept");
        let session = within("the handshake", Server::new(config).accept(tcp))
            .await
            .expect("handshake");
        handler(session).await;
    });
    (url, task)
}

async fn finish(task: JoinHandle<()>) {
    within("the test server", task)
        .await
        .expect("the test server failed");
}

const LINES: &str = r#"{"b":1,"a":[1,2.5,null,true,"x"]}

"ünïcödé"
-7
18446744073709551615
{"nested":{"empty":[],"object":{}}}
"#;

/// What the echo of [`LINES`] prints: the same values, key order kept, the empty line gone.
const ECHOED: &[&str] = &[
    r#"{"b":1,"a":[1,2.5,null,true,"x"]}"#,
    r#""ünïcödé""#,
    "-7",
    "18446744073709551615",
    r#"{"nested":{"empty":[],"object":{}}}"#,
];

// ---- connect + serve ----

#[tokio::test]
async fn echo_round_trips_json_lines_with_each_codec() {
    for codec in ["json", "cbor", "msgpack"] {
        let server = serve(&["--codec", codec]).await;
        let run = connect(&format!("{}/", server.base), &["--codec", codec], LINES).await;
        assert_eq!(run.code, Some(0), "{codec}: {run:#?}");
        assert_eq!(run.stdout_lines(), ECHOED, "{codec}");
        assert_eq!(run.stderr, "", "{codec}");
    }
}

#[tokio::test]
async fn a_line_that_is_not_json_is_reported_and_the_session_goes_on() {
    let server = serve(&["--codec", "cbor"]).await;
    let input = "[1]\n{\"unterminated\": \n[2]\n";
    let run = connect(&server.base, &["--codec", "cbor"], input).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stdout_lines(), ["[1]", "[2]"]);
    let error = run.one_error_line();
    assert!(error.contains("stdin line 2 is not JSON"), "{error}");
    assert!(error.contains("skipped"), "{error}");
}

#[tokio::test]
async fn serve_negotiates_by_its_own_order_and_falls_back_to_its_first_codec() {
    let server = serve(&["--codec", "msgpack,json"]).await;
    let url = format!("{}/", server.base);

    // The CLI offers json then cbor; the server speaks json, not cbor.
    let run = connect(&url, &["--codec", "json,cbor"], LINES).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stdout_lines(), ECHOED);

    // Which codec each kind of client gets, seen from a library client.
    let offers_cbor_json =
        Client::new(Config::new().negotiate(Negotiation::from_names("cbor,json").expect("names")));
    let mut session = within("connect", offers_cbor_json.web_socket_session(url.as_str()))
        .await
        .expect("connect");
    assert_eq!(session.subprotocol(), Some("json"));
    session.send_serialized(&[1, 2]).await.expect("send");
    let echoed: Vec<u8> = within("echo", session.receive_deserialized())
        .await
        .expect("echo");
    assert_eq!(echoed, [1, 2]);
    within(
        "close",
        session.close(CloseReason::new(CloseCode::Normal, "")),
    )
    .await
    .expect("close");

    let offers_nothing = Client::new(Config::new().converter(MsgPackConverter::new()));
    let mut session = within("connect", offers_nothing.web_socket_session(url.as_str()))
        .await
        .expect("connect");
    assert_eq!(session.subprotocol(), None);
    session.send_serialized("fallback").await.expect("send");
    let echoed: String = within("echo", session.receive_deserialized())
        .await
        .expect("echo in msgpack, the first codec");
    assert_eq!(echoed, "fallback");
}

#[tokio::test]
async fn connect_uses_the_codec_the_server_chose() {
    let config = Config::new().negotiate(
        Negotiation::from_names("json,cbor")
            .expect("names")
            .prefix("v1"),
    );
    let (url, server) = serve_once(config, |mut session| async move {
        let chosen = (
            session.converter().name(),
            session.subprotocol().map(str::to_owned),
        );
        session.send_serialized(&chosen).await.expect("send");
        session
            .close(CloseReason::new(CloseCode::Normal, ""))
            .await
            .expect("close");
    })
    .await;
    // The CLI prefers cbor, but the server's order decides.
    let run = connect_until_server_closes(
        &url,
        &["--codec", "cbor,json", "--subprotocol-prefix", "v1"],
    )
    .await;
    finish(server).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stdout_lines(), [r#"["json","v1.json"]"#]);
}

/// The README's example message.
const EXAMPLE: &str = r#"{"id":1,"tags":["a"]}"#;

#[tokio::test]
async fn every_client_codec_gets_its_echo_or_one_error_line_from_every_server() {
    let clients = ["json", "cbor", "msgpack", "msgpack,json", "cbor,msgpack"];
    let server_lists = [
        "json",
        "cbor",
        "msgpack",
        "msgpack,cbor,json",
        "json,cbor",
        "cbor,msgpack",
    ];
    let servers =
        join_all(server_lists.map(|codecs| async move { serve(&["--codec", codecs]).await })).await;
    let pairs = servers
        .iter()
        .zip(server_lists)
        .flat_map(|(server, server_codecs)| {
            clients.map(|client_codecs| async move {
                let url = format!("{}/", server.base);
                let input = format!("{EXAMPLE}\n");
                let run = connect(&url, &["--codec", client_codecs], &input).await;
                (client_codecs, server_codecs, run)
            })
        });
    let runs = join_all(pairs).await;
    assert_eq!(runs.len(), clients.len() * server_lists.len());
    for (client_codecs, server_codecs, run) in runs {
        let pair = format!("connect --codec {client_codecs} against serve --codec {server_codecs}");
        let offered: Vec<&str> = client_codecs.split(',').collect();
        let common = server_codecs
            .split(',')
            .any(|codec| offered.contains(&codec));
        if common {
            assert_eq!(run.code, Some(0), "{pair}: {run:#?}");
            assert_eq!(run.stdout_lines(), [EXAMPLE], "{pair}: {run:#?}");
            assert_eq!(run.stderr, "", "{pair}");
        } else {
            assert_eq!(run.code, Some(1), "{pair}: {run:#?}");
            assert_eq!(run.stdout, "", "{pair}");
            let error = run.one_error_line();
            for needle in [
                "400",
                "no common converter",
                client_codecs.split(',').next().unwrap_or_default(),
            ] {
                assert!(
                    error.contains(needle),
                    "{pair}: {needle:?} missing from {error}"
                );
            }
        }
    }
}

/// A tokio-tungstenite echo server that knows nothing of subprotocols and takes one
/// connection; gives its URL and a task that ends with the subprotocols the client offered.
async fn plain_echo_once() -> (String, JoinHandle<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("local addr"));
    let task = tokio::spawn(async move {
        let (tcp, _) = within("a connection", listener.accept())
            .await
            .expect("accept");
        let mut offered = None;
        #[expect(
            clippy::result_large_err,
            reason = "the signature of tungstenite's handshake callback"
        )]
        let record_offer =
            |request: &tokio_tungstenite::tungstenite::handshake::server::Request, response| {
                offered = request
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                Ok(response)
            };
        let mut ws = within(
            "the handshake",
            tokio_tungstenite::accept_hdr_async(tcp, record_offer),
        )
        .await
        .expect("handshake");
        // Until the stream ends: after the client's close is answered, or at once when the
        // client refuses the handshake's answer and drops the connection.
        while let Some(Ok(message)) = within("a message", ws.next()).await {
            if message.is_text() || message.is_binary() {
                within("the echo", ws.send(message)).await.expect("echo");
            }
        }
        offered
    });
    (url, task)
}

#[tokio::test]
async fn one_codec_talks_to_a_server_without_subprotocols_over_one_connection() {
    let cases: [(&[&str], &str); 4] = [
        (&[], "json"),
        (&["--codec", "cbor"], "cbor"),
        (&["--codec", "msgpack"], "msgpack"),
        (
            &["--codec", "cbor", "--subprotocol-prefix", "v1"],
            "v1.cbor",
        ),
    ];
    for (options, offer) in cases {
        let (url, server) = plain_echo_once().await;
        let run = connect(&url, options, &format!("{EXAMPLE}\n")).await;
        let offered = within("the test server", server)
            .await
            .expect("the test server failed");
        assert_eq!(run.code, Some(0), "{options:?}: {run:#?}");
        assert_eq!(run.stdout_lines(), [EXAMPLE], "{options:?}");
        assert_eq!(run.stderr, "", "{options:?}");
        // Offered, answered with no subprotocol, and used all the same.
        assert_eq!(offered.as_deref(), Some(offer), "{options:?}");
    }
}

#[tokio::test]
async fn a_codec_list_against_a_server_without_subprotocols_exits_1_with_one_line() {
    let (url, server) = plain_echo_once().await;
    let run = connect(&url, &["--codec", "msgpack,json"], &format!("{EXAMPLE}\n")).await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert_eq!(run.stdout, "");
    let error = run.one_error_line();
    assert!(error.contains("subprotocol negotiation failed"), "{error}");
    assert!(error.contains("msgpack, json"), "{error}");
    // The server saw the offer before the client gave up on its answer.
    let offered = within("the test server", server)
        .await
        .expect("the test server failed");
    assert_eq!(offered.as_deref(), Some("msgpack, json"));
}

#[tokio::test]
async fn a_refused_handshake_exits_1_with_one_line_naming_the_status() {
    let server = serve(&["--path", "/a"]).await;
    let run = connect(&format!("{}/b", server.base), &[], "[1]\n").await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.one_error_line().contains("404"), "{run:#?}");
    assert_eq!(run.stdout, "");

    // The path it serves works.
    let run = connect(&format!("{}/a", server.base), &[], "[1]\n").await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "[1]\n"),
        "{run:#?}"
    );
}

#[tokio::test]
async fn a_refused_connection_exits_1_with_one_line() {
    // A port that was free a moment ago: nothing listens on it.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let run = connect(&format!("ws://127.0.0.1:{port}/"), &[], "").await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.one_error_line().contains("cannot connect"), "{run:#?}");
}

// ---- connect against servers written with the library ----

#[derive(Serialize)]
struct Blob {
    id: u32,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

/// What rmp-serde writes as a MessagePack extension.
#[derive(Serialize)]
#[serde(rename = "_ExtStruct")]
struct Ext((i8, serde_bytes::ByteBuf));

#[tokio::test]
async fn cbor_bytes_keys_and_tags_print_in_the_documented_json_form() {
    let (url, server) = serve_once(
        Config::new().converter(CborConverter),
        |mut session| async move {
            let blob = Blob {
                id: 7,
                data: vec![0, 1, 2, 253, 254, 255],
            };
            session.send_serialized(&blob).await.expect("send");
            let keys = BTreeMap::from([(1, "one"), (-2, "minus two")]);
            session.send_serialized(&keys).await.expect("send");
            let composite_key = BTreeMap::from([(vec![1, 2], true)]);
            session.send_serialized(&composite_key).await.expect("send");
            let uri = ciborium::tag::Captured(Some(32), "https://example.com");
            session.send_serialized(&uri).await.expect("send");
            session
                .close(CloseReason::new(CloseCode::Normal, "done"))
                .await
                .expect("close");
        },
    )
    .await;
    let run = connect_until_server_closes(&url, &["--codec", "cbor"]).await;
    finish(server).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(
        run.stdout_lines(),
        [
            r#"{"id":7,"data":{"$bytes":"AAEC/f7/"}}"#,
            r#"{"-2":"minus two","1":"one"}"#,
            r#"{"[1,2]":true}"#,
            r#"{"$tag":32,"$value":"https://example.com"}"#,
        ]
    );
    assert_eq!(run.stderr, "");
}

#[tokio::test]
async fn msgpack_bytes_and_extensions_print_in_the_documented_json_form() {
    let (url, server) = serve_once(
        Config::new().converter(MsgPackConverter::new()),
        |mut session| async move {
            let blob = Blob {
                id: 1,
                data: b"hi".to_vec(),
            };
            session.send_serialized(&blob).await.expect("send");
            let ext = Ext((5, serde_bytes::ByteBuf::from(vec![1, 2, 3])));
            session.send_serialized(&ext).await.expect("send");
            let bytes_key = BTreeMap::from([(serde_bytes::ByteBuf::from(vec![9]), 1.5f32)]);
            session.send_serialized(&bytes_key).await.expect("send");
            session
                .close(CloseReason::new(CloseCode::GoingAway, ""))
                .await
                .expect("close");
        },
    )
    .await;
    let run = connect_until_server_closes(&url, &["--codec", "msgpack"]).await;
    finish(server).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(
        run.stdout_lines(),
        [
            r#"{"id":1,"data":{"$bytes":"aGk="}}"#,
            r#"{"$ext":5,"$bytes":"AQID"}"#,
            r#"{"{\"$bytes\":\"CQ==\"}":1.5}"#,
        ]
    );
}

#[tokio::test]
async fn the_echo_server_sends_bytes_tags_and_extensions_back_as_they_came() {
    let server = serve(&["--codec", "msgpack,cbor"]).await;
    let url = format!("{}/", server.base);
    let blob = Blob {
        id: 3,
        data: vec![1, 2, 3],
    };
    let msgpack = MsgPackConverter::new()
        .serialize(&(&blob, Ext((-1, serde_bytes::ByteBuf::from(vec![0; 4])))))
        .expect("encode");
    let cbor = CborConverter
        .serialize(&(&blob, ciborium::tag::Captured(Some(1), 1_700_000_000)))
        .expect("encode");
    for (codec, frame) in [("msgpack", msgpack), ("cbor", cbor)] {
        let client = Client::new(Config::new());
        let request = client.request(url.as_str()).subprotocol(codec);
        let mut session = within("connect", request.web_socket_session())
            .await
            .expect("connect");
        assert_eq!(session.subprotocol(), Some(codec));
        session.send(frame.clone()).await.expect("send");
        let echoed = within("echo", session.receive()).await.expect("echo");
        assert_eq!(echoed, frame, "{codec}: the echo is byte for byte the same");
    }
}

#[tokio::test]
async fn cbor_bignums_and_non_finite_floats_print_in_the_documented_json_form() {
    let (url, server) = serve_once(
        Config::new().converter(CborConverter),
        |mut session| async move {
            // Bignum tags on 16 bytes, positive and negative, and a plain CBOR integer below
            // i64::MIN.
            let integers = (u128::MAX, i128::MIN, -(1i128 << 64));
            session.send_serialized(&integers).await.expect("send");
            // Past 16 bytes ciborium no longer reads a bignum as an integer.
            let long = ciborium::tag::Captured(Some(2), serde_bytes::Bytes::new(&[1; 17]));
            session.send_serialized(&long).await.expect("send");
            let floats = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.1];
            session.send_serialized(&floats).await.expect("send");
            session
                .close(CloseReason::new(CloseCode::Normal, ""))
                .await
                .expect("close");
        },
    )
    .await;
    let run = connect_until_server_closes(&url, &["--codec", "cbor"]).await;
    finish(server).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(
        run.stdout_lines(),
        [
            "[340282366920938463463374607431768211455,\
             -170141183460469231731687303715884105728,-18446744073709551616]",
            r#"{"$tag":2,"$value":{"$bytes":"AQEBAQEBAQEBAQEBAQEBAQE="}}"#,
            "[null,null,null,0.1]",
        ]
    );
    assert_eq!(run.stderr, "");
}

#[tokio::test]
async fn the_echo_server_sends_float32_integer_keys_and_bignums_back_as_they_came() {
    let server = serve(&["--codec", "msgpack,cbor"]).await;
    let url = format!("{}/", server.base);
    let keys = BTreeMap::from([(-2, "minus two"), (1, "one")]);
    let msgpack = MsgPackConverter::new()
        .serialize(&(1.1f32, &keys, u64::MAX, i64::MIN))
        .expect("encode");
    let cbor = CborConverter
        .serialize(&(1.1f32, &keys, u128::MAX, i128::MIN, f64::NAN))
        .expect("encode");
    for (codec, frame) in [("msgpack", msgpack), ("cbor", cbor)] {
        let client = Client::new(Config::new());
        let request = client.request(url.as_str()).subprotocol(codec);
        let mut session = within("connect", request.web_socket_session())
            .await
            .expect("connect");
        session.send(frame.clone()).await.expect("send");
        let echoed = within("echo", session.receive()).await.expect("echo");
        assert_eq!(echoed, frame, "{codec}: the echo is byte for byte the same");
    }
}

#[tokio::test]
async fn a_frame_that_does_not_decode_is_reported_and_skipped() {
    let (url, server) = serve_once(
        Config::new().converter(CborConverter),
        |mut session| async move {
            // 0xff is a CBOR "break" outside any indefinite-length item.
            session.send_binary(vec![0xff]).await.expect("send");
            session
                .send_text("text for a binary codec")
                .await
                .expect("send");
            session.send_serialized("still here").await.expect("send");
            session
                .close(CloseReason::new(CloseCode::Normal, ""))
                .await
                .expect("close");
        },
    )
    .await;
    let run = connect_until_server_closes(&url, &["--codec", "cbor"]).await;
    finish(server).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stdout_lines(), [r#""still here""#]);
    let errors = run.stderr_lines();
    assert_eq!(errors.len(), 2, "{run:#?}");
    assert!(errors[0].starts_with("typed-ws: could not decode a 1-byte binary frame"));
    assert!(errors[1].starts_with("typed-ws: the cbor converter does not read text frames"));
}

#[tokio::test]
async fn a_server_closing_with_4000_exits_3_with_the_code_and_reason() {
    let (url, server) = serve_once(
        Config::new().converter(JsonConverter),
        |mut session| async move {
            session
                .close(CloseReason::new(
                    CloseCode::Application(4000),
                    "go away now",
                ))
                .await
                .expect("close");
        },
    )
    .await;
    let run = connect_until_server_closes(&url, &[]).await;
    finish(server).await;
    assert_eq!(run.code, Some(3), "{run:#?}");
    let error = run.one_error_line();
    assert!(error.contains("4000"), "{error}");
    assert!(error.contains("go away now"), "{error}");
}

#[tokio::test]
async fn headers_and_subprotocols_reach_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/hello", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let (tcp, _) = within("a connection", listener.accept())
            .await
            .expect("accept");
        let config = Config::new()
            .converter(JsonConverter)
            .subprotocols(["chat"]);
        let mut seen = Vec::new();
        let mut session = within(
            "the handshake",
            Server::new(config).accept_with(tcp, |request| {
                for name in ["x-token", "x-time"] {
                    let value = request.headers().get(name).and_then(|v| v.to_str().ok());
                    seen.push(value.unwrap_or("missing").to_owned());
                }
                Ok(())
            }),
        )
        .await
        .expect("handshake");
        seen.push(session.subprotocol().unwrap_or("none").to_owned());
        session.send_serialized(&seen).await.expect("send");
        session
            .close(CloseReason::new(CloseCode::Normal, ""))
            .await
            .expect("close");
    });
    let run = connect_until_server_closes(
        &url,
        &[
            "-H",
            "X-Token: secret",
            "--header",
            "X-Time:12:30",
            "--subprotocol",
            "chat",
        ],
    )
    .await;
    finish(server).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stdout_lines(), [r#"["secret","12:30","chat"]"#]);
}

#[tokio::test]
async fn the_ping_interval_sends_pings() {
    let (url, server) = serve_once(Config::new(), |mut session| async move {
        // The client sends nothing else, so its first frame is the ping.
        let frame = within("a ping", session.receive()).await.expect("receive");
        assert!(
            matches!(frame, Frame::Ping(_)),
            "expected a ping, got {frame:?}"
        );
        session
            .close(CloseReason::new(CloseCode::Normal, ""))
            .await
            .expect("close");
    })
    .await;
    let run = connect_until_server_closes(&url, &["--ping-interval", "0.05"]).await;
    finish(server).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
}

#[tokio::test]
async fn a_silent_server_times_out_with_exit_3() {
    let (url, server) = serve_once(Config::new(), |mut session| async move {
        // Says nothing; sees the client's close when it gives up.
        let frame = within("the client's close", session.receive())
            .await
            .expect("receive");
        let Frame::Close(Some(reason)) = frame else {
            panic!("expected a close frame, got {frame:?}");
        };
        assert_eq!(reason.code, CloseCode::InternalError);
    })
    .await;
    let run = connect_until_server_closes(&url, &["--timeout", "1"]).await;
    finish(server).await;
    assert_eq!(run.code, Some(3), "{run:#?}");
    assert!(run.one_error_line().contains("timed out"), "{run:#?}");
}

#[tokio::test]
async fn a_message_over_the_size_limit_exits_3() {
    let server = serve(&[]).await;
    let long = format!("\"{}\"\n", "x".repeat(100));
    let run = connect(&server.base, &["--max-message-size", "64"], &long).await;
    assert_eq!(run.code, Some(3), "{run:#?}");
    assert!(run.one_error_line().contains("too big"), "{run:#?}");
}

// ---- serve against library clients ----

#[tokio::test]
async fn serve_closes_bad_sessions_with_1007_and_1003_and_keeps_the_others() {
    let server = serve(&["--codec", "json", "--max-message-size", "1K"]).await;
    let url = format!("{}/", server.base);
    let raw = Client::new(Config::new());
    let mut good = within("connect", raw.web_socket_session(url.as_str()))
        .await
        .expect("connect");

    let cases: [(Frame, CloseCode); 3] = [
        (Frame::text("{not json"), CloseCode::InvalidPayload),
        (Frame::binary(vec![1, 2, 3]), CloseCode::Unsupported),
        (
            Frame::text(format!("\"{}\"", "x".repeat(2000))),
            CloseCode::TooBig,
        ),
    ];
    for (frame, expected) in cases {
        let mut bad = within("connect", raw.web_socket_session(url.as_str()))
            .await
            .expect("connect");
        bad.send(frame).await.expect("send");
        let answer = within("the close", bad.receive()).await.expect("receive");
        let Frame::Close(Some(reason)) = answer else {
            panic!("expected a close frame, got {answer:?}");
        };
        assert_eq!(reason.code, expected, "{reason}");
    }

    good.send_text(r#"{"still":"echoing"}"#)
        .await
        .expect("send");
    let echoed = within("echo", good.receive()).await.expect("echo");
    assert_eq!(echoed, Frame::text(r#"{"still":"echoing"}"#));
}

// ---- usage ----

#[tokio::test]
async fn usage_errors_exit_2_with_one_line() {
    let cases: [&[&str]; 6] = [
        &["connect"],
        &["connect", "ws://127.0.0.1:1/", "--codec", "yaml"],
        &["connect", "http://127.0.0.1:1/"],
        &["connect", "ws://127.0.0.1:1/", "-H", "no colon"],
        &["serve", "--addr", "not an address"],
        &["serve", "--path", "no-slash"],
    ];
    for args in cases {
        let run = run(args, "", false).await;
        assert_eq!(run.code, Some(2), "{args:?}: {run:#?}");
        run.one_error_line();
    }
}

#[tokio::test]
async fn help_documents_the_exit_codes_and_the_json_mapping() {
    let connect = run(&["connect", "--help"], "", false).await;
    assert_eq!(connect.code, Some(0), "{connect:#?}");
    for needle in [
        "Exit codes",
        "3  the session ended abnormally",
        "$bytes",
        "$tag",
        "$ext",
    ] {
        assert!(
            connect.stdout.contains(needle),
            "{needle:?} missing from {}",
            connect.stdout
        );
    }
    let top = run(&["--help"], "", false).await;
    assert_eq!(top.code, Some(0), "{top:#?}");
    assert!(top.stdout.contains("2  usage error"), "{}", top.stdout);
}

#[tokio::test]
async fn compress_offers_and_accepts_permessage_deflate_and_messages_still_round_trip() {
    // serve --compress accepts a client's offer, and echoes.
    let server = serve(&["--compress"]).await;
    let config = Config::new()
        .converter(JsonConverter)
        .compression(Compression::new());
    let mut session = within(
        "connect",
        Client::new(config).web_socket_session(format!("{}/", server.base)),
    )
    .await
    .expect("connect");
    assert!(session.compression().is_some(), "serve --compress declined");
    let long = serde_json::json!({ "text": "compressible ".repeat(200) });
    within("send", session.send_serialized(&long))
        .await
        .unwrap();
    let back: serde_json::Value = within("echo", session.receive_deserialized())
        .await
        .unwrap();
    assert_eq!(back, long);
    // connect --compress talks to it, compressing.
    let run = connect(&format!("{}/", server.base), &["--compress"], LINES).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stdout_lines(), ECHOED);

    // connect --compress offers it to a server that accepts, and only with the flag.
    for (flags, offered) in [(&["--compress"][..], true), (&[][..], false)] {
        let config = Config::new()
            .converter(JsonConverter)
            .compression(Compression::new());
        let (url, task) = serve_once(config, move |mut session| async move {
            assert_eq!(session.compression().is_some(), offered);
            while let Ok(frame) = session.receive().await {
                if frame.is_data() && session.send(frame).await.is_err() {
                    break;
                }
            }
        })
        .await;
        let run = connect(&url, flags, LINES).await;
        assert_eq!(run.code, Some(0), "{flags:?}: {run:#?}");
        assert_eq!(run.stdout_lines(), ECHOED, "{flags:?}");
        finish(task).await;
    }
}
