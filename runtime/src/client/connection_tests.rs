//! Tests of the connection core: frames in, frames and outputs out, no I/O.

use super::*;

fn open_frame() -> String {
    r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        .to_owned()
}

fn connect(c: &mut Connection) -> Vec<Output> {
    c.transport_opened(0.0);
    let out = c.receive(&open_frame(), 1.0);
    assert_eq!(
        out,
        vec![Output::Send(r#"40{"token":"tok"}"#.to_owned())],
        "CONNECT carries the tab token as auth"
    );
    c.receive(r#"40{"sid":"s1"}"#, 2.0)
}

#[test]
fn connects_with_the_token_then_hydrates() {
    let mut c = Connection::new("tok");
    assert_eq!(c.status(), Status::Connecting);
    let out = connect(&mut c);
    assert_eq!(out[0], Output::Connected);
    let Output::Send(frame) = &out[1] else {
        panic!("expected a frame, got {out:?}")
    };
    assert!(
        frame.starts_with(r#"42["event",{"id":1,"name":"_hydrate""#),
        "{frame}"
    );
    assert_eq!(c.status(), Status::Connected);
}

#[test]
fn answers_pings_and_parses_updates() {
    let mut c = Connection::new("tok");
    connect(&mut c);
    assert_eq!(c.receive("2", 3.0), vec![Output::Send("3".into())]);
    let out = c.receive(
        r#"42["event",{"id":4,"delta":{"counter_state":{"count":2}},"events":[],"final":true}]"#,
        4.0,
    );
    let [Output::Update(u)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(u.id, Some(4));
    assert_eq!(u.delta["counter_state"]["count"], 2);
    assert!(u.is_final);
}

fn frames(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn answer(c: &mut Connection, id: u64) -> Vec<Output> {
    c.receive(
        &format!(r#"42["event",{{"id":{id},"delta":{{}},"events":[],"final":true}}]"#),
        5.0,
    )
}

#[test]
fn queues_while_disconnected_and_resends_only_what_has_no_answer() {
    let mut c = Connection::new("tok");
    let (a, now) = c.emit("counter_state.increment", json!({}), RouterData::default());
    assert!(now.is_none());
    let (b, _) = c.emit("counter_state.increment", json!({}), RouterData::default());
    assert_eq!((a, b), (1, 2));
    let out = connect(&mut c);
    let sent = frames(&out);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[0].contains("_hydrate"));
    assert!(sent[1].contains(r#""id":1"#) && sent[2].contains(r#""id":2"#));
    assert_eq!(c.queued(), 0);
    assert_eq!(c.unanswered(), 2);
    answer(&mut c, 1);
    assert_eq!(c.unanswered(), 1);
    // The socket dies before event 2 is answered: the next one sends it again, and only it.
    c.transport_closed(0.5);
    let again = frames(&connect(&mut c));
    assert_eq!(again.len(), 2, "the resync and event 2: {again:?}");
    assert!(again[1].contains(r#""id":2"#), "{again:?}");
    answer(&mut c, 2);
    c.transport_closed(0.5);
    assert_eq!(frames(&connect(&mut c)).len(), 1, "only the resync");
}

#[test]
fn at_most_a_window_of_events_is_out_and_answers_let_more_go() {
    let mut c = Connection::new("tok");
    connect(&mut c);
    let mut out = 0;
    for _ in 0..EVENT_WINDOW + 10 {
        if c.emit("s.h", Value::Null, RouterData::default())
            .1
            .is_some()
        {
            out += 1;
        }
    }
    assert_eq!(out, EVENT_WINDOW, "the window is full, the rest wait");
    assert_eq!(c.queued(), 10);
    // The hydrate answer (id 1) is not an event of the window and frees nothing.
    assert!(frames(&answer(&mut c, 1)).is_empty());
    let more = frames(&answer(&mut c, 2));
    assert_eq!(more.len(), 1, "one answer lets one more go: {more:?}");
    assert!(more[0].contains(&format!(r#""id":{}"#, EVENT_WINDOW + 2)));
    assert_eq!(c.queued(), 9);
}

#[test]
fn the_epoch_goes_with_the_token() {
    let mut c = Connection::new("tok").with_epoch("load-7");
    c.transport_opened(0.0);
    let out = c.receive(&open_frame(), 1.0);
    let [Output::Send(frame)] = out.as_slice() else {
        panic!("{out:?}")
    };
    let auth: Value = serde_json::from_str(frame.strip_prefix("40").unwrap()).unwrap();
    assert_eq!(auth, json!({"token": "tok", "epoch": "load-7"}));
}

#[test]
fn reconnecting_status_counts_attempts_and_resets_when_up() {
    let mut c = Connection::new("tok");
    connect(&mut c);
    c.transport_closed(0.0);
    assert_eq!(c.status(), Status::Reconnecting { attempt: 1 });
    c.transport_closed(0.0);
    assert_eq!(c.status(), Status::Reconnecting { attempt: 2 });
    connect(&mut c);
    assert_eq!(c.status(), Status::Connected);
}

#[test]
fn backoff_grows_is_capped_and_jittered() {
    assert_eq!(backoff_ms(1, 1.0), BACKOFF_BASE_MS);
    assert_eq!(backoff_ms(2, 1.0), 2.0 * BACKOFF_BASE_MS);
    assert_eq!(backoff_ms(1, 0.0), BACKOFF_BASE_MS / 2.0);
    assert_eq!(backoff_ms(30, 1.0), BACKOFF_MAX_MS);
    assert!(backoff_ms(30, 0.3) < BACKOFF_MAX_MS);
}

#[test]
fn silence_beyond_the_heartbeat_is_a_dead_connection() {
    let mut c = Connection::new("tok");
    connect(&mut c);
    assert!(!c.is_silent(40_000.0));
    assert!(c.is_silent(2.0 + 25_000.0 + 20_000.0 + 1001.0));
}

#[test]
fn refusal_and_garbage_close_the_transport() {
    let mut c = Connection::new("tok");
    c.transport_opened(0.0);
    c.receive(&open_frame(), 1.0);
    let out = c.receive(r#"44{"message":"origin not allowed"}"#, 2.0);
    assert_eq!(out, vec![Output::Close("origin not allowed".into())]);
    assert!(matches!(c.receive("x", 3.0)[0], Output::Close(_)));
}

#[test]
fn a_full_queue_drops_the_oldest() {
    let mut c = Connection::new("tok");
    for _ in 0..MAX_QUEUED + 5 {
        c.emit("s.h", Value::Null, RouterData::default());
    }
    assert_eq!(c.queued(), MAX_QUEUED);
    assert_eq!(c.dropped(), 5);
}

#[test]
fn acks_flow_markers_with_their_nonce() {
    let mut c = Connection::new("tok");
    connect(&mut c);
    let out = c.receive(r#"427["_flow","5f3a9c"]"#, 3.0);
    assert_eq!(out, vec![Output::Send(r#"437["5f3a9c"]"#.to_owned())]);
    // A marker that asks for no ack is no marker; neither is another event with an ack.
    assert_eq!(c.receive(r#"42["_flow","5f3a9c"]"#, 3.5), Vec::new());
    assert_eq!(c.receive(r#"428["other","x"]"#, 3.6), Vec::new());
}

#[test]
fn a_resync_instruction_fetches_the_states_again() {
    let mut c = Connection::new("tok");
    connect(&mut c);
    let out = c.receive(
        r#"42["event",{"id":null,"delta":{},"events":[{"name":"_resync","payload":{}}],"final":true}]"#,
        3.0,
    );
    let sent = frames(&out);
    assert_eq!(sent.len(), 1, "{out:?}");
    assert!(sent[0].contains(r#""name":"_hydrate""#), "{}", sent[0]);
    // An update without it sends nothing.
    let out = c.receive(
        r#"42["event",{"id":null,"delta":{"s":{"n":1}},"events":[],"final":true}]"#,
        4.0,
    );
    assert!(frames(&out).is_empty(), "{out:?}");
}

fn changed(c: &mut Connection, tables: &str) -> Vec<Output> {
    c.receive(
        &format!(
            r#"42["event",{{"id":null,"delta":{{}},"events":[{{"name":"_changed","payload":{{"tables":{tables}}}}}],"final":true}}]"#
        ),
        5.0,
    )
}

fn live_id(frame: &str) -> u64 {
    let packet: Value = serde_json::from_str(&frame[2..]).expect("a socket.io event");
    assert_eq!(packet[1]["name"], "_live", "{frame}");
    packet[1]["id"].as_u64().expect("an id")
}

#[test]
fn a_burst_of_changes_asks_for_one_reload_at_a_time_and_one_after_it() {
    let mut c = Connection::new("tok");
    connect(&mut c);
    let sent = frames(&changed(&mut c, r#"["notes"]"#));
    assert_eq!(sent.len(), 1, "a change asks at once: {sent:?}");
    assert!(
        sent[0].contains(r#""payload":{"tables":["notes"]}"#),
        "{}",
        sent[0]
    );
    let first = live_id(&sent[0]);
    for _ in 0..500 {
        assert!(
            frames(&changed(&mut c, r#"["notes","posts"]"#)).is_empty(),
            "while a reload is out, changes wait"
        );
    }
    let sent = frames(&answer(&mut c, first));
    assert_eq!(
        sent.len(),
        1,
        "its answer sends what came meanwhile: {sent:?}"
    );
    assert!(
        sent[0].contains(r#""payload":{"tables":["notes","posts"]}"#),
        "each table once: {}",
        sent[0]
    );
    let second = live_id(&sent[0]);
    assert!(
        frames(&answer(&mut c, second)).is_empty(),
        "nothing came after: no third reload"
    );
    assert_eq!(c.unanswered(), 0, "reloads are not kept to send again");
}

#[test]
fn changes_heard_before_a_reconnect_are_left_to_its_hydrate() {
    let mut c = Connection::new("tok");
    connect(&mut c);
    let first = live_id(&frames(&changed(&mut c, r#"["notes"]"#))[0]);
    assert!(frames(&changed(&mut c, r#"["notes"]"#)).is_empty());
    c.transport_closed(0.5);
    let sent = frames(&connect(&mut c));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("_hydrate"), "{}", sent[0]);
    assert!(
        frames(&answer(&mut c, first)).is_empty(),
        "a late answer of the old socket's reload asks for nothing"
    );
    let sent = frames(&changed(&mut c, r#"["notes"]"#));
    assert_eq!(sent.len(), 1, "the new socket asks again: {sent:?}");
}
