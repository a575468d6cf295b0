//! The room of `examples/chat`: who is in it under which names, and the topic that carries
//! its events to every member, on this node and, on a bus, on the others.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use typed_ws::AnyConverter;
use typed_ws::topics::{Outbox, Position, Topic, Topics};

use crate::Event;
use crate::common::log;

/// The longest name asked for, in characters.
const MAX_NAME: usize = 24;

/// Everyone in the room. The topic orders the events: every member of a node sees one
/// history, and on a bus every node sees each other node's events in that node's order.
pub struct Room {
    /// Kept for as long as the room: the topics hear the other nodes while a handle lives.
    topics: Topics<Event>,
    topic: Topic<Event>,
    next_message: AtomicU64,
    /// Held across a join, so that the welcome's list and the `joined` event agree.
    joining: tokio::sync::Mutex<()>,
    state: Mutex<RoomState>,
}

struct RoomState {
    max_members: usize,
    next_member: u64,
    /// This node's members, ordered by arrival, which is the order of the online list.
    members: BTreeMap<u64, String>,
    names: Names,
    /// Members of other nodes, by name, as their `joined` and `left` events told.
    elsewhere: HashMap<String, usize>,
}

impl Room {
    /// An empty room that lets in at most `max_members` at once on this node, its events on
    /// the topic `name` of `topics`.
    pub fn new(max_members: usize, topics: Topics<Event>, name: &str) -> Room {
        Room {
            topic: topics.topic(name),
            topics,
            next_message: AtomicU64::new(0),
            joining: tokio::sync::Mutex::new(()),
            state: Mutex::new(RoomState {
                max_members,
                next_member: 0,
                members: BTreeMap::new(),
                names: Names::default(),
                elsewhere: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RoomState> {
        // A panic elsewhere cannot leave the room half-updated: every change is one call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds the outbox's session under a name no one else on this node has: tells the
    /// others, welcomes it, then subscribes it to the room's numbered events, from `since`
    /// (the last a page got before it lost its connection) when given. Gives its id, or
    /// `None`, with the room untouched, when the room is full.
    pub async fn join(
        &self,
        wanted: &str,
        outbox: &Outbox<AnyConverter>,
        since: Option<Position>,
    ) -> Option<u64> {
        let joining = self.joining.lock().await;
        let (id, name) = {
            let mut state = self.lock();
            if state.members.len() >= state.max_members {
                return None;
            }
            let name = state.names.claim(wanted);
            let id = state.next_member;
            state.next_member += 1;
            state.members.insert(id, name.clone());
            (id, name)
        };
        // Outside the room's lock: the other nodes' events take the topic's lock, then the
        // room's, on their way in (`Room::heard`).
        self.publish(&Event::Joined { name: name.clone() });
        // The welcome comes first, then the outcome of `since` and what was missed, then every
        // event after the `joined`. Its list is taken under the topic's lock, which the other
        // nodes' events hold from `heard` to being queued: each is in the list or follows it.
        let welcome = || {
            let state = self.lock();
            let online = state
                .members
                .values()
                .chain(state.elsewhere.keys())
                .cloned()
                .collect();
            Event::Welcome { name, online }
        };
        if self
            .topic
            .subscribe_since_with(outbox, since, welcome)
            .await
            .is_err()
        {
            drop(joining);
            self.leave(id);
            return None;
        }
        Some(id)
    }

    pub fn say(&self, id: u64, text: &str) {
        let text = text.trim();
        let Some(author) = self.lock().members.get(&id).cloned() else {
            return;
        };
        if text.is_empty() {
            return;
        }
        self.publish(&Event::Message {
            id: self.next_message.fetch_add(1, Ordering::Relaxed),
            author,
            text: text.to_owned(),
        });
    }

    /// Takes a member out of the room, frees its name and tells everyone.
    pub fn leave(&self, id: u64) {
        let mut state = self.lock();
        if let Some(name) = state.members.remove(&id) {
            state.names.release(&name);
            drop(state);
            self.publish(&Event::Left { name });
        }
    }

    /// Keeps track of who is on the other nodes, from their events.
    pub fn heard(&self, event: &Event) {
        let mut state = self.lock();
        match event {
            Event::Joined { name } => *state.elsewhere.entry(name.clone()).or_default() += 1,
            Event::Left { name } => {
                if let Some(count) = state.elsewhere.get_mut(name) {
                    *count -= 1;
                    if *count == 0 {
                        state.elsewhere.remove(name);
                    }
                }
            }
            Event::Welcome { .. } | Event::Message { .. } => {}
        }
    }

    fn publish(&self, event: &Event) {
        if let Err(e) = self.topics.publish(self.topic.name(), event) {
            log(format!("cannot publish an event: {e}"));
        }
    }
}

/// The names in use. However many ask for one name, a join finds a free one in O(1)
/// amortized: every stem (a name without its ` (n)` suffix) keeps the next suffix to try, so
/// the suffixes given out are not tried again.
#[derive(Default)]
struct Names {
    taken: HashSet<String>,
    stems: HashMap<String, Stem>,
    /// Lookups in `taken`, so that the tests check the search's cost without timing it.
    #[cfg(test)]
    lookups: usize,
}

struct Stem {
    /// Names in use with this stem. The entry goes with the last of them, so that there are
    /// never more stems than members, however many names have come and gone.
    in_use: usize,
    /// The next suffix to try. It only grows while the entry lives, and the entry is made
    /// when no name with this stem is in use: a suffix is passed over only for a name taken
    /// since, each at most once, so that all searches together make at most three lookups
    /// per join.
    next_suffix: u64,
}

impl Names {
    /// Takes a name for someone who asked for `wanted`: `wanted` cut to [`MAX_NAME`]
    /// characters (`guest` when blank) if it is free, else `NAME (n)` with the first `n`
    /// from its stem's counter on that is free.
    fn claim(&mut self, wanted: &str) -> String {
        let wanted: String = wanted.trim().chars().take(MAX_NAME).collect();
        let wanted = if wanted.is_empty() {
            "guest".to_owned()
        } else {
            wanted
        };
        let name = if self.is_free(&wanted) {
            wanted
        } else {
            let mut n = self.stems.get(&wanted).map_or(2, |stem| stem.next_suffix);
            let name = loop {
                let candidate = format!("{wanted} ({n})");
                n += 1;
                if self.is_free(&candidate) {
                    break candidate;
                }
            };
            // The name's stem is `wanted`: the entry counted below.
            self.stems
                .entry(wanted)
                .or_insert_with(Stem::new)
                .next_suffix = n;
            name
        };
        let stem = stem_of(&name).to_owned();
        self.stems.entry(stem).or_insert_with(Stem::new).in_use += 1;
        self.taken.insert(name.clone());
        name
    }

    fn is_free(&mut self, name: &str) -> bool {
        #[cfg(test)]
        {
            self.lookups += 1;
        }
        !self.taken.contains(name)
    }

    fn release(&mut self, name: &str) {
        self.taken.remove(name);
        let stem = stem_of(name);
        if let Some(entry) = self.stems.get_mut(stem) {
            entry.in_use -= 1;
            if entry.in_use == 0 {
                self.stems.remove(stem);
            }
        }
    }
}

impl Stem {
    fn new() -> Stem {
        Stem {
            in_use: 0,
            next_suffix: 2,
        }
    }
}

/// `name` without a ` (n)` suffix as [`Names::claim`] writes them, or all of it. A name asked
/// for in that form counts under its stem too, so that its holder cannot make the stem's
/// search pass over it again and again.
fn stem_of(name: &str) -> &str {
    let split = name
        .strip_suffix(')')
        .and_then(|rest| rest.rsplit_once(" ("));
    match split {
        Some((stem, n)) if n.parse::<u64>().is_ok_and(|v| v >= 2 && v.to_string() == n) => stem,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crowd_asking_for_one_name_gets_distinct_names_for_a_few_lookups_each() {
        let mut names = Names::default();
        let mut given = HashSet::new();
        for _ in 0..5_000 {
            assert!(given.insert(names.claim("bob")), "a name given twice");
        }
        assert!(given.contains("bob") && given.contains("bob (5000)"));
        // Searching from `bob (2)` each time, as the room once did, takes 5,001 lookups here.
        let before = names.lookups;
        assert_eq!(names.claim(" bob "), "bob (5001)");
        assert_eq!(names.lookups - before, 2, "`bob`, then `bob (5001)`");
        assert!(names.lookups <= 3 * 5_001, "{} lookups", names.lookups);
    }

    #[test]
    fn names_held_in_the_suffix_form_are_passed_over_once() {
        let mut names = Names::default();
        for n in 2..=1_001 {
            assert_eq!(names.claim(&format!("bob ({n})")), format!("bob ({n})"));
        }
        assert_eq!(names.claim("bob"), "bob");
        assert_eq!(names.claim("bob"), "bob (1002)");
        // With the 1,000 held, `bob` and the last `bob (n)` leave and come back, again and
        // again: a search that forgot its place once no `bob` was left would pass over all
        // 1,000 every round.
        let before = names.lookups;
        for round in 0..1_000 {
            names.release("bob");
            names.release(&format!("bob ({})", 1_002 + round));
            assert_eq!(names.claim("bob"), "bob");
            assert_eq!(names.claim("bob"), format!("bob ({})", 1_003 + round));
        }
        assert_eq!(names.lookups - before, 3 * 1_000);
    }

    #[test]
    fn names_are_cut_and_defaulted_and_leave_nothing_behind() {
        let mut names = Names::default();
        let long = "é".repeat(30);
        let claimed = [
            ("", "guest"),
            ("   ", "guest (2)"),
            (&long, &long[..2 * MAX_NAME]),
            (&long, &format!("{} (2)", &long[..2 * MAX_NAME])),
            ("bob (2)", "bob (2)"),
            ("bob", "bob"),
            ("bob", "bob (3)"),
            ("bob (3)", "bob (3) (2)"),
            ("bob (02)", "bob (02)"),
        ];
        for (wanted, given) in claimed {
            assert_eq!(names.claim(wanted), given, "for {wanted:?}");
        }
        for (_, given) in claimed {
            names.release(given);
        }
        assert!(names.taken.is_empty() && names.stems.is_empty());
        assert_eq!(names.claim("bob"), "bob");
        assert_eq!(names.claim("bob"), "bob (2)", "the count starts afresh");
    }
}
