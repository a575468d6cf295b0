//! What the documentation promises about itself: each table is written once (the defaults on
//! `Config`, the errors on `Error`, the command line in `typed-ws --help`), so what is left to
//! check is that the numbers in prose are the constants, that README stays a front door with
//! the commands CI runs, and that every chapter of the guide is in the rustdoc.

use std::collections::BTreeMap;

const README: &str = include_str!("../README.md");
const CONFIG_RS: &str = include_str!("../src/config.rs");
const GUIDE_RS: &str = include_str!("../src/guide.rs");

/// The rows of the first table after `heading` in the doc comments of `text`, as cells.
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

/// A default as the table writes it, as a number: "16 MiB" → 16 << 20, "20 s for ..." → 20,
/// "10,000 sessions" → 10000; `None` for a cell that starts with no number ("off").
fn default_number(cell: &str) -> Option<u64> {
    let mut words = cell.split_whitespace();
    let number: u64 = words.next()?.replace(',', "").parse().ok()?;
    Some(
        number
            << match words.next().map(|unit| unit.trim_matches(',')) {
                Some("KiB") => 10,
                Some("MiB") => 20,
                _ => 0,
            },
    )
}

/// The defaults table on `Config` shows what `Config::new()` starts with: each setting's
/// number is its `DEFAULT_` constant's value.
#[test]
fn the_config_defaults_table_shows_the_constants() {
    use typed_ws::*;
    let constants: BTreeMap<&str, u64> = BTreeMap::from([
        ("max_frame_size", DEFAULT_MAX_FRAME_SIZE as u64),
        ("max_message_size", DEFAULT_MAX_MESSAGE_SIZE as u64),
        ("read_buffer_size", DEFAULT_READ_BUFFER_SIZE as u64),
        ("max_connections", DEFAULT_MAX_CONNECTIONS as u64),
        ("max_unfinished_bytes", DEFAULT_MAX_UNFINISHED_BYTES as u64),
        ("ping_interval", DEFAULT_PING_INTERVAL.as_secs()),
        ("timeout", DEFAULT_TIMEOUT.as_secs()),
        ("handshake_timeout", DEFAULT_HANDSHAKE_TIMEOUT.as_secs()),
        ("send_timeout", DEFAULT_SEND_TIMEOUT.as_secs()),
        ("shutdown_timeout", DEFAULT_SHUTDOWN_TIMEOUT.as_secs()),
    ]);
    let shown: BTreeMap<&str, u64> = table_after(CONFIG_RS, "| setting | default |")
        .iter()
        .filter_map(|row| {
            // "[`max_frame_size`](Config::max_frame_size)" → "max_frame_size"
            let setting = row[0].split('`').nth(1)?;
            let setting = *constants.keys().find(|known| **known == setting)?;
            Some((setting, default_number(&row[1])?))
        })
        .collect();
    assert_eq!(shown, constants);
}

/// CI runs the test command that README gives, and a newcomer finds it, with the demo's,
/// before the first section.
#[test]
fn the_readme_starts_with_the_demo_and_the_test_command() {
    let intro = README.split("\n## ").next().expect("README");
    let commands: Vec<&str> = intro
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("a sh block before the first section")
        .lines()
        .collect();
    assert!(
        commands.contains(&"cargo run --example demo"),
        "{commands:?}"
    );
    assert!(
        commands.contains(&"cargo test --all-features"),
        "{commands:?}"
    );
}

/// README is the front door; the guide is in docs/.
#[test]
fn the_readme_stays_short_and_its_links_lead_somewhere() {
    assert!(
        README.lines().count() <= 200,
        "README.md has grown past 200 lines"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for link in README.split("](").skip(1) {
        let target = &link[..link.find(')').expect("a link's end")];
        if !target.starts_with("http") {
            assert!(
                root.join(target).exists(),
                "README links to {target}, missing"
            );
        }
    }
}

/// Every chapter in docs/ is included in the rustdoc, so that its code blocks run as doc tests
/// and docs.rs shows it.
#[test]
fn every_chapter_in_docs_is_in_the_guide() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut chapters = 0;
    for entry in std::fs::read_dir(dir).expect("docs/") {
        let name = entry.expect("an entry").file_name();
        let name = name.to_str().expect("a UTF-8 name");
        let include = format!("include_str!(\"../docs/{name}\")");
        assert!(GUIDE_RS.contains(&include), "src/guide.rs lacks {include}");
        chapters += 1;
    }
    assert!(chapters >= 10, "{chapters} chapters");
}
