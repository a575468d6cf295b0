use super::*;

fn agreed(send: (u8, bool), receive: (u8, bool)) -> PerMessageDeflate {
    PerMessageDeflate {
        send_window_bits: send.0,
        send_no_context_takeover: send.1,
        receive_window_bits: receive.0,
        receive_no_context_takeover: receive.1,
    }
}

fn with(change: impl FnOnce(&mut Compression)) -> Compression {
    let mut compression = Compression::default();
    change(&mut compression);
    compression
}

const FULL: (u8, bool) = (15, false);

#[test]
fn an_offer_names_every_setting_that_differs_from_the_default() {
    let cases = [
        (
            with(|c| {
                c.threshold = 0;
                c.level = 9;
            }),
            "permessage-deflate; client_max_window_bits",
        ),
        (
            with(|c| c.max_window_bits = 10),
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            with(|c| c.no_context_takeover = true),
            "permessage-deflate; client_max_window_bits; client_no_context_takeover",
        ),
        (
            with(|c| c.peer_no_context_takeover = true),
            "permessage-deflate; client_max_window_bits; server_no_context_takeover",
        ),
        (
            with(|c| c.peer_max_window_bits = 9),
            "permessage-deflate; client_max_window_bits; server_max_window_bits=9",
        ),
        (
            Compression {
                threshold: 32,
                level: 6,
                no_context_takeover: true,
                peer_no_context_takeover: true,
                max_window_bits: 8,
                peer_max_window_bits: 12,
            },
            "permessage-deflate; client_max_window_bits=8; client_no_context_takeover; \
             server_no_context_takeover; server_max_window_bits=12",
        ),
    ];
    for (compression, expected) in cases {
        assert_eq!(offer(&compression), expected, "{compression:?}");
    }
}

#[test]
fn the_server_answers_with_the_first_offer_it_can_accept() {
    let default = Compression::default();
    let cases: [(Compression, &[&str], &str, PerMessageDeflate); 22] = [
        // Chrome, Node's ws and Python's websockets send this by default.
        (
            default,
            &["permessage-deflate; client_max_window_bits"],
            "permessage-deflate",
            agreed(FULL, FULL),
        ),
        // Firefox.
        (
            default,
            &["permessage-deflate"],
            "permessage-deflate",
            agreed(FULL, FULL),
        ),
        // Python websockets with the window sizes from its compression guide.
        (
            default,
            &["permessage-deflate; server_max_window_bits=11; client_max_window_bits=11"],
            "permessage-deflate; server_max_window_bits=11; client_max_window_bits=11",
            agreed((11, false), (11, false)),
        ),
        (
            default,
            &["permessage-deflate; foo, permessage-deflate; server_max_window_bits=10"],
            "permessage-deflate; server_max_window_bits=10",
            agreed((10, false), FULL),
        ),
        (
            default,
            &[
                "permessage-deflate; server_max_window_bits=7",
                "permessage-deflate; client_max_window_bits=9",
            ],
            "permessage-deflate; client_max_window_bits=9",
            agreed(FULL, (9, false)),
        ),
        (
            default,
            &[
                "x-webkit-deflate-frame",
                "foo; bar=\"a\\\", b\", permessage-deflate",
            ],
            "permessage-deflate",
            agreed(FULL, FULL),
        ),
        (
            default,
            &[", ,permessage-deflate,", ""],
            "permessage-deflate",
            agreed(FULL, FULL),
        ),
        (
            default,
            &["permessage-deflate; server_max_window_bits=\"10\"; client_max_window_bits=\"1\\1\""],
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=11",
            agreed((10, false), (11, false)),
        ),
        (
            default,
            &["PerMessage-Deflate; Server_No_Context_Takeover; CLIENT_MAX_WINDOW_BITS=9"],
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=9",
            agreed((15, true), (9, false)),
        ),
        (
            default,
            &["  permessage-deflate ;server_max_window_bits = 10 ;\tclient_no_context_takeover  "],
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10",
            agreed((10, false), (15, true)),
        ),
        // The server's own window limit is announced even when the client did not ask.
        (
            with(|c| c.max_window_bits = 10),
            &["permessage-deflate"],
            "permessage-deflate; server_max_window_bits=10",
            agreed((10, false), FULL),
        ),
        (
            with(|c| c.max_window_bits = 10),
            &["permessage-deflate; server_max_window_bits=12"],
            "permessage-deflate; server_max_window_bits=10",
            agreed((10, false), FULL),
        ),
        (
            with(|c| c.max_window_bits = 12),
            &["permessage-deflate; server_max_window_bits=9"],
            "permessage-deflate; server_max_window_bits=9",
            agreed((9, false), FULL),
        ),
        (
            default,
            &["permessage-deflate; server_max_window_bits=15; client_max_window_bits=15"],
            "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
            agreed(FULL, FULL),
        ),
        (
            with(|c| c.no_context_takeover = true),
            &["permessage-deflate"],
            "permessage-deflate; server_no_context_takeover",
            agreed((15, true), FULL),
        ),
        (
            with(|c| c.peer_no_context_takeover = true),
            &["permessage-deflate"],
            "permessage-deflate; client_no_context_takeover",
            agreed(FULL, (15, true)),
        ),
        (
            with(|c| c.peer_max_window_bits = 10),
            &["permessage-deflate; client_max_window_bits"],
            "permessage-deflate; client_max_window_bits=10",
            agreed(FULL, (10, false)),
        ),
        (
            with(|c| c.peer_max_window_bits = 10),
            &["permessage-deflate; client_max_window_bits=12"],
            "permessage-deflate; client_max_window_bits=10",
            agreed(FULL, (10, false)),
        ),
        (
            with(|c| c.peer_max_window_bits = 12),
            &["permessage-deflate; client_max_window_bits=9"],
            "permessage-deflate; client_max_window_bits=9",
            agreed(FULL, (9, false)),
        ),
        // A client that did not offer client_max_window_bits cannot be limited.
        (
            with(|c| c.peer_max_window_bits = 10),
            &["permessage-deflate"],
            "permessage-deflate",
            agreed(FULL, FULL),
        ),
        (
            default,
            &[
                "permessage-deflate; client_max_window_bits=9; server_max_window_bits=10; \
               client_no_context_takeover; server_no_context_takeover",
            ],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9",
            agreed((10, true), (9, true)),
        ),
        (
            Compression {
                threshold: 32,
                level: 6,
                no_context_takeover: true,
                peer_no_context_takeover: true,
                max_window_bits: 9,
                peer_max_window_bits: 8,
            },
            &["permessage-deflate; client_max_window_bits"],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=9; client_max_window_bits=8",
            agreed((9, true), (8, true)),
        ),
    ];
    for (compression, offers, response, expected) in cases {
        assert_eq!(
            answer(&compression, offers.iter().copied()),
            Some((response.to_owned(), expected)),
            "{offers:?} to {compression:?}"
        );
    }
}

#[test]
fn an_offer_the_server_cannot_accept_is_declined_and_the_next_one_taken() {
    let declined = [
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; Server_Max_Window_Bits=10; server_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=ten",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=\"1 0\"",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=265",
        "permessage-deflate; client_max_window_bits=\"10",
        "permessage-deflate;",
        "x-webkit-deflate-frame",
    ];
    let default = Compression::default();
    for offer in declined {
        assert_eq!(answer(&default, [offer]), None, "{offer}");
        assert_eq!(
            answer(
                &default,
                [offer, "permessage-deflate; client_no_context_takeover"]
            ),
            Some((
                "permessage-deflate; client_no_context_takeover".to_owned(),
                agreed(FULL, (15, true))
            )),
            "{offer}"
        );
    }
    assert_eq!(answer(&default, []), None);
}

#[test]
fn the_client_accepts_an_answer_that_fits_its_offer() {
    let default = Compression::default();
    let cases: [(Compression, &[&str], Option<PerMessageDeflate>); 14] = [
        (default, &[], None),
        (default, &["", " , "], None),
        (default, &["permessage-deflate"], Some(agreed(FULL, FULL))),
        // The server may limit its own window without being asked.
        (
            default,
            &["permessage-deflate; server_max_window_bits=10"],
            Some(agreed(FULL, (10, false))),
        ),
        (
            default,
            &["permessage-deflate; client_max_window_bits=9"],
            Some(agreed((9, false), FULL)),
        ),
        (
            with(|c| c.max_window_bits = 12),
            &["permessage-deflate"],
            Some(agreed((12, false), FULL)),
        ),
        (
            with(|c| c.max_window_bits = 12),
            &["permessage-deflate; client_max_window_bits=12"],
            Some(agreed((12, false), FULL)),
        ),
        (
            default,
            &["permessage-deflate; server_no_context_takeover"],
            Some(agreed(FULL, (15, true))),
        ),
        (
            default,
            &["permessage-deflate; client_no_context_takeover"],
            Some(agreed((15, true), FULL)),
        ),
        (
            with(|c| c.no_context_takeover = true),
            &["permessage-deflate"],
            Some(agreed((15, true), FULL)),
        ),
        (
            with(|c| c.peer_max_window_bits = 10),
            &["permessage-deflate; server_max_window_bits=9"],
            Some(agreed(FULL, (9, false))),
        ),
        (
            with(|c| c.peer_no_context_takeover = true),
            &["permessage-deflate; server_no_context_takeover"],
            Some(agreed(FULL, (15, true))),
        ),
        (
            default,
            &[
                "",
                "  PERMESSAGE-DEFLATE ;  Server_Max_Window_Bits = \"11\"\t;client_max_window_bits=10 ",
            ],
            Some(agreed((10, false), (11, false))),
        ),
        (
            Compression {
                threshold: 32,
                level: 6,
                no_context_takeover: false,
                peer_no_context_takeover: true,
                max_window_bits: 12,
                peer_max_window_bits: 10,
            },
            &[
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
               server_max_window_bits=10; client_max_window_bits=11",
            ],
            Some(agreed((11, true), (10, true))),
        ),
    ];
    for (compression, response, expected) in cases {
        assert_eq!(
            accept(&compression, response.iter().copied()),
            Ok(expected),
            "{response:?} to {compression:?}"
        );
    }
}

#[test]
fn the_client_fails_an_answer_that_breaks_the_rfc_or_its_offer() {
    let default = Compression::default();
    let cases: [(Compression, &[&str], &str); 16] = [
        (
            default,
            &["x-foo"],
            "the server agreed to \"x-foo\", which was not offered",
        ),
        (
            default,
            &["permessage-deflate", "x-foo; bar=1"],
            "the server agreed to \"x-foo\", which was not offered",
        ),
        (
            default,
            &["permessage-deflate, permessage-deflate"],
            "the server agreed to \"permessage-deflate\" more than once",
        ),
        (
            default,
            &["permessage-deflate; foo"],
            "unknown parameter \"foo\"",
        ),
        (
            default,
            &["permessage-deflate; server_no_context_takeover; Server_No_Context_Takeover"],
            "\"Server_No_Context_Takeover\" appears more than once",
        ),
        (
            default,
            &["permessage-deflate; client_max_window_bits=9; client_max_window_bits=9"],
            "\"client_max_window_bits\" appears more than once",
        ),
        (
            default,
            &["permessage-deflate; client_no_context_takeover=true"],
            "\"client_no_context_takeover\" takes no value",
        ),
        (
            default,
            &["permessage-deflate; server_max_window_bits"],
            "\"server_max_window_bits\" needs a value",
        ),
        (
            default,
            &["permessage-deflate; server_max_window_bits=16"],
            "\"server_max_window_bits\" must be from 8 to 15, not \"16\"",
        ),
        (
            default,
            &["permessage-deflate; server_max_window_bits=08"],
            "\"server_max_window_bits\" must be from 8 to 15, not \"08\"",
        ),
        (
            with(|c| c.peer_max_window_bits = 10),
            &["permessage-deflate; server_max_window_bits=11"],
            "\"server_max_window_bits=11\" is larger than the 10 offered",
        ),
        (
            with(|c| c.peer_max_window_bits = 10),
            &["permessage-deflate"],
            "the server left out \"server_max_window_bits\", which was offered as 10",
        ),
        (
            default,
            &["permessage-deflate; client_max_window_bits"],
            "\"client_max_window_bits\" needs a value in a response",
        ),
        (
            default,
            &["permessage-deflate; client_max_window_bits=7"],
            "\"client_max_window_bits\" must be from 8 to 15, not \"7\"",
        ),
        (
            with(|c| c.max_window_bits = 10),
            &["permessage-deflate; client_max_window_bits=11"],
            "\"client_max_window_bits=11\" is larger than the 10 offered",
        ),
        (
            with(|c| c.peer_no_context_takeover = true),
            &["permessage-deflate"],
            "the server left out \"server_no_context_takeover\", which was offered",
        ),
    ];
    for (compression, response, expected) in cases {
        assert_eq!(
            accept(&compression, response.iter().copied()),
            Err(expected.to_owned()),
            "{response:?} to {compression:?}"
        );
    }
    assert_eq!(
        accept(
            &default,
            ["permessage-deflate; server_max_window_bits=\"10"]
        ),
        Err("malformed extension \"permessage-deflate; server_max_window_bits=\"10\"".to_owned())
    );
}

#[test]
fn both_ends_agree_on_mirrored_settings_after_a_handshake() {
    let client = Compression {
        threshold: 32,
        level: 6,
        no_context_takeover: true,
        peer_no_context_takeover: false,
        max_window_bits: 12,
        peer_max_window_bits: 11,
    };
    let cases = [
        (Compression::default(), Compression::default()),
        (client, Compression::default()),
        (
            Compression::default(),
            with(|c| {
                c.no_context_takeover = true;
                c.peer_no_context_takeover = true;
                c.max_window_bits = 9;
                c.peer_max_window_bits = 10;
            }),
        ),
        (client, with(|c| c.peer_max_window_bits = 9)),
    ];
    for (client, server) in cases {
        let offer = offer(&client);
        let Some((response, at_server)) = answer(&server, [offer.as_str()]) else {
            panic!("{server:?} declined {offer}");
        };
        let at_client = accept(&client, [response.as_str()]);
        let mirrored = PerMessageDeflate {
            send_window_bits: at_server.receive_window_bits,
            send_no_context_takeover: at_server.receive_no_context_takeover,
            receive_window_bits: at_server.send_window_bits,
            receive_no_context_takeover: at_server.send_no_context_takeover,
        };
        assert_eq!(at_client, Ok(Some(mirrored)), "{offer} / {response}");
    }
}
