//! The tables that README.md shows beside the rustdoc or `typed-ws --help` must say the same:
//! each is written in two places (GitHub readers, docs.rs readers, shell users), so these tests
//! are what keep them together.

use std::collections::BTreeMap;

const README: &str = include_str!("../README.md");
const ERROR_RS: &str = include_str!("../src/error.rs");
const CONFIG_RS: &str = include_str!("../src/config.rs");

/// The rows of the first table after `heading` in markdown `text` (doc-comment prefixes
/// removed), as cells.
fn table_after(text: &str, heading: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.trim_start().trim_start_matches("///").trim())
        .collect();
    let start = lines
        .iter()
        .position(|line| line.contains(heading))
        .unwrap_or_else(|| panic!("no {heading:?}"));
    lines[start..]
        .iter()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The backquoted names at the start of a first cell: "`Handshake` (...), `InvalidUrl`".
fn names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .filter(|name| name.chars().next().is_some_and(char::is_alphabetic))
        .collect()
}

/// Variant → close code digits ("1009" or "" for none), from a table's first and last cells.
fn close_codes(rows: Vec<Vec<String>>) -> BTreeMap<String, String> {
    let mut codes = BTreeMap::new();
    for row in rows {
        let code: String = row[row.len() - 1]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        for name in names(&row[0])
            .into_iter()
            .filter(|n| n.starts_with(char::is_uppercase) && n.chars().all(char::is_alphanumeric))
        {
            codes.insert(name, code.clone());
        }
    }
    codes
}

#[test]
fn the_error_tables_agree() {
    let readme = close_codes(table_after(README, "## Errors and close codes"));
    let rustdoc = close_codes(table_after(ERROR_RS, "| variant | session afterwards |"));
    assert!(readme.len() >= 14, "{readme:?}");
    assert_eq!(readme, rustdoc);
}

/// The value a default starts with, and its unit: "16 MiB (`DEFAULT_...`)" → "16 MiB",
/// "10,000 connections" → "10,000", "`webpki-roots`: ..." → "webpki-roots".
fn default_value(cell: &str) -> String {
    let mut words = cell
        .split_whitespace()
        .map(|w| w.trim_matches(['`', ':', ',']));
    let first = words.next().unwrap_or_default();
    match words.next() {
        Some(unit @ ("s" | "KiB" | "MiB")) => format!("{first} {unit}"),
        _ => first.to_owned(),
    }
}

#[test]
fn the_defaults_tables_agree() {
    let setting = |cell: &str| {
        cell.trim_start_matches('[')
            .split(['`', ']'])
            .find(|part| !part.is_empty())
            .unwrap_or_default()
            .to_owned()
    };
    let rows = |text, heading| -> BTreeMap<String, String> {
        table_after(text, heading)
            .into_iter()
            .filter(|row| row[0].starts_with(['`', '[']))
            .map(|row| (setting(&row[0]), default_value(&row[1])))
            .collect()
    };
    let readme = rows(README, "## Limits and defaults");
    let rustdoc = rows(CONFIG_RS, "| setting | default |");
    assert!(rustdoc.len() >= 14, "{rustdoc:?}");
    assert_eq!(readme, rustdoc);
}

/// A default as the README writes it, as a number: "16 MiB" → 16 << 20, "20 s" → 20,
/// "10,000" → 10000.
fn default_number(value: &str) -> u64 {
    let (number, unit) = value.split_once(' ').unwrap_or((value, ""));
    let number: u64 = number
        .replace(',', "")
        .parse()
        .unwrap_or_else(|e| panic!("{value:?}: {e}"));
    number
        << match unit {
            "KiB" => 10,
            "MiB" => 20,
            _ => 0,
        }
}

/// The README's defaults are what `Config::new()` starts with: each row that names its
/// constant shows the constant's value.
#[test]
fn the_readme_defaults_are_the_constants() {
    use typed_ws::*;
    let constants: BTreeMap<&str, u64> = BTreeMap::from([
        ("DEFAULT_MAX_FRAME_SIZE", DEFAULT_MAX_FRAME_SIZE as u64),
        ("DEFAULT_MAX_MESSAGE_SIZE", DEFAULT_MAX_MESSAGE_SIZE as u64),
        ("DEFAULT_READ_BUFFER_SIZE", DEFAULT_READ_BUFFER_SIZE as u64),
        ("DEFAULT_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS as u64),
        ("DEFAULT_PING_INTERVAL", DEFAULT_PING_INTERVAL.as_secs()),
        ("DEFAULT_TIMEOUT", DEFAULT_TIMEOUT.as_secs()),
        (
            "DEFAULT_HANDSHAKE_TIMEOUT",
            DEFAULT_HANDSHAKE_TIMEOUT.as_secs(),
        ),
        ("DEFAULT_SEND_TIMEOUT", DEFAULT_SEND_TIMEOUT.as_secs()),
        (
            "DEFAULT_SHUTDOWN_TIMEOUT",
            DEFAULT_SHUTDOWN_TIMEOUT.as_secs(),
        ),
    ]);
    let shown: BTreeMap<&str, u64> = table_after(README, "## Limits and defaults")
        .iter()
        .filter_map(|row| {
            let name = row[1]
                .split('`')
                .find(|part| part.starts_with("DEFAULT_"))?;
            let name = *constants.keys().find(|known| **known == name)?;
            Some((name, default_number(&default_value(&row[1]))))
        })
        .collect();
    assert_eq!(shown, constants);
}

/// The lines of `help` indented under the line `heading`, as (first column, rest), with a
/// row's continuation lines joined to it.
#[cfg(feature = "cli")]
fn help_rows(help: &str, heading: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for line in help
        .lines()
        .skip_while(|line| line.trim() != heading)
        .skip(1)
        .take_while(|line| line.starts_with("  "))
    {
        let text = line.trim();
        match text.split_once("  ") {
            Some((first, rest)) if !line.starts_with("     ") => {
                rows.push(vec![first.trim().to_owned(), rest.trim().to_owned()]);
            }
            _ => {
                let row = rows.last_mut().expect("a continued row");
                row[1] = format!("{} {text}", row[1]);
            }
        }
    }
    rows
}

/// What `typed-ws ARGS` prints on stdout.
#[cfg(feature = "cli")]
fn help(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_typed-ws"))
        .args(args)
        .output()
        .expect("run typed-ws");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("UTF-8 help")
}

/// README's rows with their backquotes removed, as the help text has none.
#[cfg(feature = "cli")]
fn unquoted(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|row| row.into_iter().map(|cell| cell.replace('`', "")).collect())
        .collect()
}

#[cfg(feature = "cli")]
#[test]
fn the_cli_tables_in_the_readme_are_the_ones_help_prints() {
    let forms = help_rows(&help(&["connect", "--help"]), "What JSON lacks prints as:");
    assert!(forms.len() >= 6, "{forms:?}");
    assert_eq!(
        unquoted(table_after(README, "Values JSON cannot hold print as")),
        forms
    );
    let codes = help_rows(&help(&["--help"]), "Exit codes:");
    assert_eq!(codes.len(), 4, "{codes:?}");
    assert_eq!(
        unquoted(table_after(README, "Errors go to stderr as one line")),
        codes
    );
}
