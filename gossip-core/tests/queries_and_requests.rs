//! Queries and write requests: a query reaches the members its filter selects, and their
//! answers come back until the timeout; a write request reaches the owner (around a broken
//! link through relays), the owner's policy or application decides, an accepted one is
//! written once and spreads, and the requester learns the outcome; the caller's mistakes are
//! typed errors.

mod common;

use std::time::Duration;

use common::{Harness, name};
use gossip_core::{
    Config, Event, MessageError, QueryFilter, QueryId, RequestOutcome, WriteError, WritePolicy,
    WriteRequestId,
};

fn formed(n: usize, config: Config, seed: u64) -> Harness {
    let mut h = Harness::new(n, config, seed);
    h.run_for(Duration::from_secs(10));
    assert!(h.in_sync(), "seed {seed}: the cluster did not form");
    for events in &mut h.events {
        events.clear();
    }
    h
}

fn queries(events: &[Event]) -> Vec<QueryId> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Query { query, .. } => Some(query.clone()),
            _ => None,
        })
        .collect()
}

fn answers(events: &[Event]) -> Vec<(u64, String, Vec<u8>)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::QueryResponse { query, from, payload } => Some((*query, from.clone(), payload.to_vec())),
            _ => None,
        })
        .collect()
}

fn finished(events: &[Event]) -> Vec<(u64, usize)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::QueryFinished { query, responses } => Some((*query, *responses)),
            _ => None,
        })
        .collect()
}

fn outcomes(events: &[Event]) -> Vec<(u64, String, String, RequestOutcome)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::WriteAnswered { request, owner, key, outcome } => {
                Some((*request, owner.clone(), key.clone(), outcome.clone()))
            }
            _ => None,
        })
        .collect()
}

fn write_requests(events: &[Event]) -> Vec<(WriteRequestId, String, Option<Vec<u8>>)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::WriteRequested { request, key, value } => {
                Some((request.clone(), key.clone(), value.as_ref().map(|value| value.to_vec())))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_query_reaches_the_members_its_filter_selects_and_their_answers_come_back() {
    for seed in 1..=3 {
        let mut h = Harness::new(8, Config::lan(), seed);
        for db in [2, 5] {
            h.nodes[db].set("role", &b"db"[..]).expect("a write");
        }
        h.nodes[6].set("role", &b"cache"[..]).expect("a write");
        h.run_for(Duration::from_secs(10));
        for events in &mut h.events {
            events.clear();
        }
        let filter = QueryFilter::Key { key: "role".into(), value: Some(b"db"[..].into()) };
        let id = h.nodes[0].query("health", &b"ok?"[..], filter, Duration::from_secs(3)).expect("a query");
        h.drain(0);
        h.run_for(Duration::from_secs(1));
        for index in 0..8 {
            let got = queries(&h.events[index]);
            if [2, 5].contains(&index) {
                assert_eq!(got, vec![QueryId { origin: name(0), generation: 1, id }], "seed {seed}: {index}");
                let answer = format!("fine from {index}");
                h.nodes[index].respond(&got[0], answer.into_bytes()).expect("within the timeout");
                assert!(
                    matches!(
                        h.nodes[index].respond(&got[0], &b"again"[..]),
                        Err(MessageError::UnknownQuery { .. })
                    ),
                    "a query is answered once"
                );
                h.drain(index);
            } else {
                assert!(got.is_empty(), "seed {seed}: node {index} is not selected");
            }
        }
        h.run_for(Duration::from_secs(3));
        let mut got = answers(&h.events[0]);
        got.sort();
        assert_eq!(
            got,
            vec![(id, name(2), b"fine from 2".to_vec()), (id, name(5), b"fine from 5".to_vec())],
            "seed {seed}"
        );
        assert_eq!(finished(&h.events[0]), vec![(id, 2)], "seed {seed}");
        // By name: only the members listed.
        let filter = QueryFilter::Names(vec![name(1), name(7)]);
        let id = h.nodes[4].query("who", &b""[..], filter, Duration::from_secs(1)).expect("a query");
        h.drain(4);
        h.run_for(Duration::from_secs(2));
        let selected: Vec<usize> = (0..8)
            .filter(|index| queries(&h.events[*index]).iter().any(|q| q.id == id && q.origin == name(4)))
            .collect();
        assert_eq!(selected, vec![1, 7], "seed {seed}");
        assert_eq!(finished(&h.events[4]), vec![(id, 0)], "nobody answered");
    }
}

#[test]
fn an_accepted_write_request_is_written_by_the_owner_and_spreads() {
    let mut h = formed(6, Config::lan(), 4);
    let id = h.nodes[1].request_write(&name(3), "color", &b"blue"[..]).expect("a request");
    h.drain(1);
    h.run_for(Duration::from_millis(100));
    let asked = write_requests(&h.events[3]);
    assert_eq!(asked.len(), 1, "the owner's application is asked");
    let (request, key, value) = asked[0].clone();
    assert_eq!((request.requester.as_str(), request.id, key.as_str()), (name(1).as_str(), id, "color"));
    assert_eq!(value.as_deref(), Some(&b"blue"[..]));
    let version = h.nodes[3].accept_write(&request).expect("accepted");
    assert!(matches!(h.nodes[3].accept_write(&request), Err(MessageError::UnknownRequest { .. })));
    h.drain(3);
    h.run_for(Duration::from_secs(3));
    assert_eq!(
        outcomes(&h.events[1]),
        vec![(id, name(3), "color".to_owned(), RequestOutcome::Accepted { version })]
    );
    assert!(h.all_see(3, "color", b"blue"), "an accepted request is an ordinary write of the owner");

    // A delete, refused by the application with a reason.
    let id = h.nodes[2].request_delete(&name(3), "color").expect("a request");
    h.drain(2);
    h.run_for(Duration::from_millis(100));
    let (request, _, value) = write_requests(&h.events[3]).pop().expect("asked");
    assert_eq!(value, None, "a delete");
    h.nodes[3].refuse_write(&request, "colors are mine").expect("refused");
    h.drain(3);
    h.run_for(Duration::from_secs(1));
    let reason = "colors are mine".to_owned();
    assert_eq!(
        outcomes(&h.events[2]),
        vec![(id, name(3), "color".to_owned(), RequestOutcome::Refused { reason })]
    );
    assert!(h.all_see(3, "color", b"blue"), "a refused delete deletes nothing");
}

#[test]
fn a_policy_decides_without_the_application() {
    let mut config = Config::lan();
    config.messages.write_policy = WritePolicy::AcceptPrefix("public/".into());
    let mut h = formed(4, config, 5);
    let inside = h.nodes[0].request_write(&name(1), "public/motd", &b"hi"[..]).expect("a request");
    let outside = h.nodes[0].request_write(&name(1), "secret", &b"x"[..]).expect("a request");
    h.drain(0);
    h.run_for(Duration::from_secs(3));
    assert!(write_requests(&h.events[1]).is_empty(), "the application is not asked");
    let got = outcomes(&h.events[0]);
    assert!(matches!(
        got.iter().find(|o| o.0 == inside).map(|o| &o.3),
        Some(RequestOutcome::Accepted { .. })
    ));
    assert!(matches!(
        got.iter().find(|o| o.0 == outside).map(|o| &o.3),
        Some(RequestOutcome::Refused { .. })
    ));
    assert!(h.all_see(1, "public/motd", b"hi"));
    assert_eq!(h.nodes[2].get(&name(1), "secret"), None);
}

#[test]
fn a_write_request_goes_around_a_broken_link_and_is_written_once() {
    for seed in 1..=3 {
        let mut config = Config::lan();
        config.messages.write_policy = WritePolicy::AcceptPrefix(String::new());
        let mut h = formed(6, config, seed);
        // Neither way between the requester and the owner: requests and outcomes go through
        // relays; retries and relayed copies reach the owner more than once.
        h.cut.insert((1, 4));
        h.cut.insert((4, 1));
        let before = h.nodes[4].node(&name(4)).expect("itself").max_version;
        let id = h.nodes[1].request_write(&name(4), "k", &b"v"[..]).expect("a request");
        h.drain(1);
        h.run_for(Duration::from_secs(3));
        let got = outcomes(&h.events[1]);
        assert_eq!(got.len(), 1, "seed {seed}: one outcome, {got:?}");
        assert_eq!(got[0].3, RequestOutcome::Accepted { version: before + 1 }, "seed {seed}");
        assert_eq!(got[0].0, id);
        let after = h.nodes[4].node(&name(4)).expect("itself").max_version;
        assert_eq!(after, before + 1, "seed {seed}: written once");
        assert_eq!(h.nodes[1].get(&name(4), "k").map(|v| v.to_vec()), Some(b"v".to_vec()), "seed {seed}");
        assert!(
            h.metrics().iter().map(|m| m.write_relays).sum::<u64>() >= 2,
            "seed {seed}: relayed both ways"
        );
    }
}

#[test]
fn a_request_to_an_owner_that_never_answers_times_out() {
    let mut h = formed(3, Config::lan(), 6);
    h.cut.insert((0, 2));
    h.cut.insert((1, 2));
    let id = h.nodes[0].request_write(&name(2), "k", &b"v"[..]).expect("a request");
    h.drain(0);
    h.run_for(Duration::from_secs(6));
    assert_eq!(outcomes(&h.events[0]), vec![(id, name(2), "k".to_owned(), RequestOutcome::TimedOut)]);
    assert_eq!(h.metrics()[0].write_requests_timed_out, 1);
    assert_eq!(h.nodes[0].footprint().outstanding_requests, 0);
}

#[test]
fn unanswered_requests_are_refused_after_the_timeout() {
    let mut h = formed(2, Config::lan(), 8);
    let id = h.nodes[0].request_write(&name(1), "k", &b"v"[..]).expect("a request");
    h.drain(0);
    h.run_for(Duration::from_secs(6));
    assert_eq!(write_requests(&h.events[1]).len(), 1);
    let got = outcomes(&h.events[0]);
    assert!(matches!(&got[..], [(got_id, _, _, RequestOutcome::Refused { .. })] if *got_id == id), "{got:?}");
}

#[test]
fn caller_mistakes_are_typed_errors() {
    let mut config = Config::lan();
    config.messages.max_outstanding_requests = 1;
    config.messages.max_outstanding_queries = 1;
    let mut h = formed(2, config, 3);
    let node = &mut h.nodes[0];
    assert_eq!(
        node.request_write("nobody", "k", &b"v"[..]),
        Err(MessageError::UnknownMember { name: "nobody".to_owned() })
    );
    assert!(matches!(
        node.request_write(&name(1), "k".repeat(200), &b"v"[..]),
        Err(MessageError::Write(WriteError::KeyTooLarge { .. }))
    ));
    assert!(matches!(
        node.request_write(&name(1), "k", vec![0; 10_000]),
        Err(MessageError::Write(WriteError::ValueTooLarge { .. }))
    ));
    node.request_write(&name(1), "k", &b"v"[..]).expect("one may wait");
    assert_eq!(node.request_write(&name(1), "k", &b"v"[..]), Err(MessageError::TooManyRequests { max: 1 }));
    assert!(matches!(
        node.query("t", &b""[..], QueryFilter::All, Duration::ZERO),
        Err(MessageError::InvalidTimeout { .. })
    ));
    assert!(matches!(
        node.query("t", &b""[..], QueryFilter::All, Duration::from_secs(3_600)),
        Err(MessageError::InvalidTimeout { .. })
    ));
    let too_many: Vec<String> = (0..65).map(name).collect();
    assert_eq!(
        node.query("t", &b""[..], QueryFilter::Names(too_many), Duration::from_secs(1)),
        Err(MessageError::InvalidFilter)
    );
    node.query("t", &b""[..], QueryFilter::All, Duration::from_secs(1)).expect("one may collect");
    assert_eq!(
        node.query("t", &b""[..], QueryFilter::All, Duration::from_secs(1)),
        Err(MessageError::TooManyQueries { max: 1 })
    );
    let unknown = QueryId { origin: name(1), generation: 1, id: 9 };
    assert!(matches!(node.respond(&unknown, &b""[..]), Err(MessageError::UnknownQuery { .. })));
    let request = WriteRequestId { requester: name(1), generation: 1, id: 9 };
    assert!(matches!(node.accept_write(&request), Err(MessageError::UnknownRequest { .. })));
}

/// A formed cluster of 6 where node 2 cannot reach node 0; node 0 asks node 2 (timeout
/// `timeout`), node 2 answers "here" a second later, before its answer is delivered. Returns
/// the harness and the query's id.
fn answered_around_a_cut(config: Config, timeout: Duration) -> (Harness, u64) {
    let mut h = formed(6, config, 12);
    h.cut.insert((2, 0));
    let filter = QueryFilter::Names(vec![name(2)]);
    let id = h.nodes[0].query("q", &b""[..], filter, timeout).expect("a query");
    h.drain(0);
    h.run_for(Duration::from_secs(1));
    let asked = queries(&h.events[2]).pop().expect("node 2 got the query");
    h.nodes[2].respond(&asked, &b"here"[..]).expect("answered");
    (h, id)
}

#[test]
fn an_answer_goes_around_a_broken_link_through_relays_and_counts_once() {
    let (mut h, id) = answered_around_a_cut(Config::lan(), Duration::from_secs(2));
    h.drain(2);
    h.run_for(Duration::from_secs(2));
    assert_eq!(answers(&h.events[0]), vec![(id, name(2), b"here".to_vec())], "relayed, taken once");
    assert_eq!(finished(&h.events[0]), vec![(id, 1)]);
    assert!(h.metrics()[0].query_responses_dropped >= 1, "the second relayed copy is dropped");
}

/// The owner of an accepted write hands it to the requester directly (at the address it knows
/// it by), so the requester does not wait for gossip: with forwarding off and rounds a second
/// apart, the requester holds the write as soon as it learns the outcome, around a one-way
/// cut.
#[test]
fn the_requester_gets_its_accepted_write_with_the_outcome() {
    for seed in 1..=3 {
        let mut config = Config::lan();
        config.messages.write_policy = WritePolicy::AcceptPrefix(String::new());
        config.rumor_forward_delay = None;
        config.gossip_interval = Duration::from_secs(1);
        let mut h = formed(6, config, seed);
        h.cut.insert((1, 4));
        h.nodes[1].request_write(&name(4), "k", &b"v"[..]).expect("a request");
        h.drain(1);
        let mut waited = Duration::ZERO;
        while outcomes(&h.events[1]).is_empty() {
            assert!(waited < Duration::from_secs(2), "seed {seed}: no outcome");
            h.run_for(Duration::from_millis(1));
            waited += Duration::from_millis(1);
        }
        h.run_for(Duration::from_millis(2));
        assert_eq!(
            h.nodes[1].get(&name(4), "k").map(|v| v.to_vec()),
            Some(b"v".to_vec()),
            "seed {seed}: outcome after {waited:?}, but not the write"
        );
    }
}

/// The copies of an answer through relays wait a random time (at most
/// `messages.query_relay_delay`, at most half the query's remaining timeout) while the straight
/// copy goes at once: around a cut straight link the answer arrives only through them, within
/// that bound.
#[test]
fn relayed_copies_of_an_answer_wait_within_half_the_remaining_timeout() {
    for (delay, timeout, bound) in [(Duration::from_secs(2), 8, 2_050), (Duration::from_secs(10), 3, 1_050)] {
        let mut config = Config::lan();
        config.messages.query_relay_delay = delay;
        let (mut h, id) = answered_around_a_cut(config, Duration::from_secs(timeout));
        assert_eq!(h.nodes[2].footprint().delayed_answers, 2, "both relayed copies wait");
        h.drain(2);
        h.run_for(Duration::from_millis(bound));
        assert_eq!(
            h.nodes[2].footprint().delayed_answers,
            0,
            "timeout {timeout} s: all went within {bound} ms"
        );
        assert_eq!(answers(&h.events[0]), vec![(id, name(2), b"here".to_vec())], "timeout {timeout} s");
    }
}

/// With no relay delay the relayed copies go with the straight one.
#[test]
fn without_a_relay_delay_the_relayed_copies_go_at_once() {
    let mut config = Config::lan();
    config.messages.query_relay_delay = Duration::ZERO;
    let (mut h, id) = answered_around_a_cut(config, Duration::from_secs(8));
    assert_eq!(h.nodes[2].footprint().delayed_answers, 0);
    h.drain(2);
    h.run_for(Duration::from_millis(50));
    assert_eq!(answers(&h.events[0]), vec![(id, name(2), b"here".to_vec())]);
}
