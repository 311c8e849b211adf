//! Property tests of everything that decodes what arrives on the wire: the Engine.IO and
//! Socket.IO codec, the `Event` JSON, redirect targets, and (through a real server) events with
//! arbitrary names, payloads and `router_data`. Nothing may panic, and every event gets a final
//! answer: a state update or an `_error`.
//!
//! Quick in `cargo xtask test` (100,000 cases per decoding property, `FERRULE_FUZZ_CASES` to
//! change); `cargo xtask fuzz` runs ten million, optimised.

use ferrule::protocol::codec::{EnginePacket, SocketPacket};
use ferrule::protocol::{Event, same_site_path};
use proptest::prelude::*;
use serde_json::{Value, json};

fn cases(default: u32) -> u32 {
    std::env::var("FERRULE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Text that looks like the protocol often enough to get past the first byte: a packet-type
/// prefix, then anything, or JSON-ish fragments.
fn frame() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just(""),
        Just("0"),
        Just("2"),
        Just("3"),
        Just("4"),
        Just("40"),
        Just("41"),
        Just("42"),
        Just("43"),
        Just("44"),
        Just("45"),
        Just("46"),
        Just("42/admin,"),
        Just("42[\"event\","),
        Just("4212[\"event\","),
        Just("451-[\"event\","),
    ];
    let body = prop_oneof![
        any::<String>(),
        "[\\[\\]{}\",:0-9a-z_./ -]{0,40}",
        Just("{\"id\":1,\"name\":\"s.h\"}]".to_owned()),
    ];
    (prefix, body).prop_map(|(p, b)| format!("{p}{b}"))
}

/// JSON values of any shape, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(100_000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn engine_and_socket_packets_decode_without_panicking(text in frame()) {
        if let Ok(packet) = EnginePacket::decode(&text) {
            if let EnginePacket::Message(inner) = &packet {
                let _ = SocketPacket::decode(inner);
            }
            // What decodes encodes back to a frame that decodes again.
            if !matches!(packet, EnginePacket::Open(_)) {
                prop_assert_eq!(EnginePacket::decode(&packet.encode()).ok(), Some(packet));
            }
        }
        let _ = SocketPacket::decode(&text);
    }

    #[test]
    fn events_decode_or_fail_cleanly(value in json_value(), text in ".{0,64}") {
        let _ = serde_json::from_value::<Event>(value);
        let _ = serde_json::from_str::<Event>(&text);
    }

    #[test]
    fn redirect_targets_are_same_site_paths_or_nothing(target in ".{0,24}") {
        if let Some(path) = same_site_path(&target) {
            prop_assert!(path.starts_with('/') && !path.starts_with("//"));
            prop_assert!(path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'));
        }
    }
}

/// End to end, through a real server: arbitrary events are each answered once, with an update
/// or an `_error`, and the socket goes on.
mod through_a_server {
    use super::*;
    use ferrule::testing::TestServer;
    use ferrule::{App, EventContext, Handlers, Settings, State};
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Default, Serialize, Deserialize)]
    struct EchoState {
        seen: u64,
    }

    #[derive(Deserialize)]
    struct Typed {
        #[allow(dead_code)]
        n: i64,
    }

    impl EchoState {
        async fn any(&mut self, _: EventContext) {
            self.seen += 1;
        }
        async fn typed(&mut self, _: EventContext, _: Typed) {
            self.seen += 1;
        }
    }

    impl ferrule::protocol::StateName for EchoState {}

    impl State for EchoState {
        fn handlers(h: &mut Handlers<Self>) {
            h.on("any", Self::any);
            h.on("typed", Self::typed);
        }
    }

    fn event() -> impl Strategy<Value = Value> {
        let name = prop_oneof![
            Just("echo_state.any".to_owned()),
            Just("echo_state.typed".to_owned()),
            Just("echo_state.nope".to_owned()),
            Just("_hydrate".to_owned()),
            ".{0,16}",
        ];
        let path = prop_oneof![Just("/".to_owned()), ".{0,16}", "/[ -~]{0,16}"];
        (name, json_value(), path, ".{0,16}", json_value()).prop_map(
            |(name, payload, path, query, junk)| {
                json!({
                    "id": 1,
                    "name": name,
                    "payload": payload,
                    "router_data": {"path": path, "query": query},
                    "extra": junk,
                })
            },
        )
    }

    #[test]
    fn every_event_gets_one_final_answer() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(async {
            let app = App::new()
                .settings(Settings::default())
                .state::<EchoState>();
            TestServer::start(app).await.unwrap()
        });
        let client = tokio::sync::Mutex::new(runtime.block_on(server.client()).unwrap());
        let config = ProptestConfig {
            cases: cases(100_000) / 50,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        let next_id = std::cell::Cell::new(1u64);
        proptest!(config, |(mut raw in event(), keep_extra in any::<bool>())| {
            let id = next_id.get() + 1;
            next_id.set(id);
            raw["id"] = json!(id);
            if !keep_extra {
                raw.as_object_mut().unwrap().remove("extra");
            }
            let answer = runtime.block_on(async {
                let mut client = client.lock().await;
                client.emit_raw(raw.clone()).await.unwrap();
                client.final_for(id).await
            });
            let answer = answer.map_err(|e| TestCaseError::fail(format!("{raw}: {e}")))?;
            prop_assert!(answer.is_final);
        });
        runtime.block_on(async {
            let mut client = client.into_inner();
            assert!(client.is_alive().await, "the socket survived every input");
        });
    }
}
