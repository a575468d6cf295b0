//! `Error::is_fatal` for every variant, held to the table in `Error`'s docs.

use std::time::Duration;

use super::Error;
use crate::frame::{CloseCode, CloseReason, Frame};
use crate::http::StatusCode;

/// One error of each variant; `is_fatal`'s exhaustive match is what makes a new variant show
/// up here, by the table check below failing for want of a row or an instance.
fn one_of_each() -> Vec<Error> {
    vec![
        Error::NoConverter { frame: None },
        Error::UnknownConverter {
            name: "yaml".to_owned(),
            known: vec!["json"],
        },
        Error::UnexpectedFrame {
            converter: "json",
            frame: Frame::binary(vec![1]),
        },
        Error::decode("json", &Frame::text("{"), "EOF while parsing"),
        Error::encode("json", "key must be a string"),
        Error::Unsendable("a control frame carries at most 125 bytes, not 126".to_owned()),
        Error::NotConnected { queued: 0 },
        Error::TooBig { size: 2, limit: 1 },
        Error::InvalidUtf8,
        Error::InvalidCompressed("invalid block type".to_owned()),
        Error::Overloaded { limit: 1 },
        Error::Protocol("reserved bits set".into()),
        Error::Timeout(Duration::from_secs(1)),
        Error::HandshakeTimeout(Duration::from_secs(1)),
        Error::Closed(CloseReason::new(CloseCode::Normal, "")),
        Error::Io(std::io::Error::other("reset")),
        Error::Handshake {
            status: Some(StatusCode::NOT_FOUND),
            message: "refused".to_owned(),
            source: None,
        },
        Error::InvalidUrl {
            url: "http://x".to_owned(),
            source: "not ws".into(),
        },
        Error::Bus {
            message: "cannot connect to the NATS server".to_owned(),
            source: None,
        },
    ]
}

/// Variant name → whether the table on `Error` says the session is usable afterwards.
fn usable_per_table() -> Vec<(String, bool)> {
    include_str!("../error.rs")
        .lines()
        .map(|line| line.trim_start().trim_start_matches("///").trim())
        .skip_while(|line| !line.starts_with("| variant |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .flat_map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            let usable = cells[1].starts_with("usable");
            cells[0]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(move |name| (name.to_owned(), usable))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn is_fatal_says_what_the_table_says() {
    let table = usable_per_table();
    let errors = one_of_each();
    assert_eq!(table.len(), errors.len(), "a row per variant: {table:?}");
    for error in errors {
        let debug = format!("{error:?}");
        let name = debug
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default();
        let Some((_, usable)) = table.iter().find(|(row, _)| row == name) else {
            panic!("no row for {name} in the table on Error");
        };
        assert_eq!(error.is_fatal(), !usable, "{name}");
    }
}
