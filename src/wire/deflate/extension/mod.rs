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
mod tests;
