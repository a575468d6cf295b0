//! Negotiation of permessage-deflate (RFC 7692) through the `Sec-WebSocket-Extensions` header:
//! the client's offer, the server's answer and the client's check of that answer, with a small
//! parser for the header syntax of RFC 6455 section 9.1.

use super::{Compression, MAX_WINDOW_BITS, MIN_WINDOW_BITS, PerMessageDeflate};
use crate::handshake::{elements, split_unquoted};

const NAME: &str = "permessage-deflate";

/// The client's offer: the value of its `Sec-WebSocket-Extensions` header.
pub(crate) fn offer(compression: &Compression) -> String {
    let mut params = vec![NAME.to_owned()];
    // Always offered, bare when there is no limit: it tells the server it may shrink our window.
    params.push(if compression.max_window_bits < MAX_WINDOW_BITS {
        format!("client_max_window_bits={}", compression.max_window_bits)
    } else {
        "client_max_window_bits".to_owned()
    });
    if compression.no_context_takeover {
        params.push("client_no_context_takeover".to_owned());
    }
    if compression.peer_no_context_takeover {
        params.push("server_no_context_takeover".to_owned());
    }
    if compression.peer_max_window_bits < MAX_WINDOW_BITS {
        params.push(format!(
            "server_max_window_bits={}",
            compression.peer_max_window_bits
        ));
    }
    params.join("; ")
}

/// The server's answer to the `Sec-WebSocket-Extensions` header values of a request (every
/// header line, in order): the first permessage-deflate offer it can accept, as the response
/// header value and what was agreed from the server's side. `None`: no offer it can accept,
/// and the session goes on without compression.
pub(crate) fn answer<'a>(
    compression: &Compression,
    offers: impl IntoIterator<Item = &'a str>,
) -> Option<(String, PerMessageDeflate)> {
    offers
        .into_iter()
        .flat_map(extensions)
        // A malformed or foreign extension is only an offer the server does not take.
        .filter_map(Result::ok)
        .filter(|extension| extension.name.eq_ignore_ascii_case(NAME))
        .find_map(|extension| answer_one(compression, &extension))
}

fn answer_one(compression: &Compression, offer: &Extension) -> Option<(String, PerMessageDeflate)> {
    let offered = Params::of(offer).ok()?;
    let offered_server_bits = match offered.server_max_window_bits {
        // RFC 7692 7.1.2.1: in an offer this parameter must carry a value.
        Some(None) => return None,
        Some(Some(bits)) => Some(bits),
        None => None,
    };
    let send_window_bits = compression
        .max_window_bits
        .min(offered_server_bits.unwrap_or(MAX_WINDOW_BITS));
    let send_no_context_takeover =
        offered.server_no_context_takeover || compression.no_context_takeover;
    let (receive_window_bits, name_client_bits) = match offered.client_max_window_bits {
        Some(bits) => {
            let window = compression
                .peer_max_window_bits
                .min(bits.unwrap_or(MAX_WINDOW_BITS));
            (window, window < MAX_WINDOW_BITS || bits.is_some())
        }
        // RFC 7692 7.1.2.2: a client that did not offer the parameter may not be limited.
        None => (MAX_WINDOW_BITS, false),
    };
    let receive_no_context_takeover =
        compression.peer_no_context_takeover || offered.client_no_context_takeover;

    let mut params = vec![NAME.to_owned()];
    if send_no_context_takeover {
        params.push("server_no_context_takeover".to_owned());
    }
    if receive_no_context_takeover {
        params.push("client_no_context_takeover".to_owned());
    }
    if offered_server_bits.is_some() || send_window_bits < MAX_WINDOW_BITS {
        params.push(format!("server_max_window_bits={send_window_bits}"));
    }
    if name_client_bits {
        params.push(format!("client_max_window_bits={receive_window_bits}"));
    }
    let agreed = PerMessageDeflate {
        send_window_bits,
        send_no_context_takeover,
        receive_window_bits,
        receive_no_context_takeover,
    };
    Some((params.join("; "), agreed))
}

/// The client's check of the server's `Sec-WebSocket-Extensions` response values:
/// `Ok(None)` when the server agreed to no extension, `Ok(Some(..))` what was agreed from the
/// client's side, `Err(why)` when the answer breaks RFC 7692 or does not fit the offer, which
/// fails the connection. `why` is lowercase, no trailing period, and quotes the offending
/// parameter or extension.
pub(crate) fn accept<'a>(
    compression: &Compression,
    response: impl IntoIterator<Item = &'a str>,
) -> Result<Option<PerMessageDeflate>, String> {
    let mut agreed = None;
    for extension in response.into_iter().flat_map(extensions) {
        let extension = extension?;
        if !extension.name.eq_ignore_ascii_case(NAME) {
            return Err(format!(
                "the server agreed to \"{}\", which was not offered",
                extension.name
            ));
        }
        if agreed.replace(extension).is_some() {
            return Err(format!("the server agreed to \"{NAME}\" more than once"));
        }
    }
    let Some(extension) = agreed else {
        return Ok(None);
    };
    let params = Params::of(&extension)?;

    let receive_window_bits = match params.server_max_window_bits {
        Some(None) => return Err("\"server_max_window_bits\" needs a value".to_owned()),
        Some(Some(bits)) if bits > compression.peer_max_window_bits => {
            return Err(format!(
                "\"server_max_window_bits={bits}\" is larger than the {} offered",
                compression.peer_max_window_bits
            ));
        }
        Some(Some(bits)) => bits,
        // RFC 7692 7.1.2.1: a server that accepts the offer must echo the limit it was given.
        None if compression.peer_max_window_bits < MAX_WINDOW_BITS => {
            return Err(format!(
                "the server left out \"server_max_window_bits\", which was offered as {}",
                compression.peer_max_window_bits
            ));
        }
        None => MAX_WINDOW_BITS,
    };
    let send_window_bits = match params.client_max_window_bits {
        Some(None) => {
            return Err("\"client_max_window_bits\" needs a value in a response".to_owned());
        }
        Some(Some(bits)) if bits > compression.max_window_bits => {
            return Err(format!(
                "\"client_max_window_bits={bits}\" is larger than the {} offered",
                compression.max_window_bits
            ));
        }
        Some(Some(bits)) => bits,
        None => compression.max_window_bits,
    };
    // RFC 7692 7.1.1.1: a server that accepts the offer must honour this request.
    if compression.peer_no_context_takeover && !params.server_no_context_takeover {
        return Err(
            "the server left out \"server_no_context_takeover\", which was offered".to_owned(),
        );
    }
    Ok(Some(PerMessageDeflate {
        send_window_bits,
        send_no_context_takeover: params.client_no_context_takeover
            || compression.no_context_takeover,
        receive_window_bits,
        receive_no_context_takeover: params.server_no_context_takeover,
    }))
}

/// One element of an extension list, with its parameters as written.
struct Extension<'a> {
    name: &'a str,
    params: Vec<(&'a str, Option<String>)>,
}

/// The permessage-deflate parameters of one extension; a window of `Some(None)` was given bare.
#[derive(Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<Option<u8>>,
    client_max_window_bits: Option<Option<u8>>,
}

impl Params {
    fn of(extension: &Extension) -> Result<Params, String> {
        let mut params = Params::default();
        for (name, value) in &extension.params {
            let first = match name.to_ascii_lowercase().as_str() {
                key @ ("server_no_context_takeover" | "client_no_context_takeover") => {
                    if value.is_some() {
                        return Err(format!("\"{name}\" takes no value"));
                    }
                    let flag = if key.starts_with("server") {
                        &mut params.server_no_context_takeover
                    } else {
                        &mut params.client_no_context_takeover
                    };
                    !std::mem::replace(flag, true)
                }
                key @ ("server_max_window_bits" | "client_max_window_bits") => {
                    let bits = match value {
                        Some(value) => Some(window_bits(value).ok_or_else(|| {
                            format!("\"{name}\" must be from 8 to 15, not \"{value}\"")
                        })?),
                        None => None,
                    };
                    let slot = if key.starts_with("server") {
                        &mut params.server_max_window_bits
                    } else {
                        &mut params.client_max_window_bits
                    };
                    slot.replace(bits).is_none()
                }
                _ => return Err(format!("unknown parameter \"{name}\"")),
            };
            if !first {
                return Err(format!("\"{name}\" appears more than once"));
            }
        }
        Ok(params)
    }
}

/// RFC 7692 allows only `1*DIGIT` without a leading zero, so "08" and "+9" are not windows.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value
        .parse()
        .ok()
        .filter(|bits| (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(bits))
}

fn extensions(value: &str) -> impl Iterator<Item = Result<Extension<'_>, String>> {
    elements(value).map(extension)
}

fn extension(text: &str) -> Result<Extension<'_>, String> {
    let malformed = || format!("malformed extension \"{text}\"");
    let mut parts = split_unquoted(text, b';').into_iter();
    let name = parts.next().unwrap_or_default().trim();
    if !is_token(name) {
        return Err(malformed());
    }
    let params = parts
        .map(|param| parameter(param).ok_or_else(malformed))
        .collect::<Result<_, _>>()?;
    Ok(Extension { name, params })
}

fn parameter(text: &str) -> Option<(&str, Option<String>)> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name.trim(), Some(unquote(value.trim())?)),
        None => (text.trim(), None),
    };
    is_token(name).then_some((name, value))
}

fn unquote(value: &str) -> Option<String> {
    let Some(quoted) = value.strip_prefix('"') else {
        return is_token(value).then(|| value.to_owned());
    };
    let quoted = quoted.strip_suffix('"')?;
    let mut unquoted = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => unquoted.push(chars.next()?),
            '"' => return None,
            c => unquoted.push(c),
        }
    }
    Some(unquoted)
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
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
                &[
                    "permessage-deflate; server_max_window_bits=\"10\"; client_max_window_bits=\"1\\1\"",
                ],
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
                &[
                    "  permessage-deflate ;server_max_window_bits = 10 ;\tclient_no_context_takeover  ",
                ],
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
            Err(
                "malformed extension \"permessage-deflate; server_max_window_bits=\"10\""
                    .to_owned()
            )
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
}
