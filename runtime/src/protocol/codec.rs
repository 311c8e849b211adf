//! Engine.IO v4 and Socket.IO v5 text packets, for clients that speak the protocol themselves.
//!
//! The server side is socketioxide's; this codec is what the native test client and the wasm
//! client use. Binary attachments are recognised and refused with [`CodecError::Binary`], since
//! Ferrule's events are JSON. [`wire_len`] is the server's side of the same text: how many bytes
//! a value takes in a packet, which its byte budgets count.

use serde::Serialize;
use serde_json::Value;

/// The length of `value` as JSON on the wire, without keeping the text (0 if it cannot be
/// encoded, which the send that follows reports).
pub fn wire_len(value: &impl Serialize) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => 0,
    }
}

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The packet was empty.
    Empty,
    /// The packet type digit is not one the protocol defines.
    UnknownType(char),
    /// A binary event or ack: attachments are not supported by Ferrule's client.
    Binary,
    /// The JSON part did not parse.
    Json(String),
    /// The packet had a shape the protocol does not allow, with a reason.
    Malformed(&'static str),
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("empty packet"),
            Self::UnknownType(c) => write!(f, "unknown packet type {c:?}"),
            Self::Binary => f.write_str("binary attachments are not supported"),
            Self::Json(e) => write!(f, "packet data is not valid JSON: {e}"),
            Self::Malformed(why) => write!(f, "malformed packet: {why}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// One Engine.IO v4 packet sent as a WebSocket text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum EnginePacket {
    /// `0{...}`: the handshake, with session id and heartbeat settings.
    Open(OpenInfo),
    /// `1`: the peer closes the transport.
    Close,
    /// `2[data]`: heartbeat from the server (v4), answered with a pong.
    Ping(String),
    /// `3[data]`: heartbeat answer.
    Pong(String),
    /// `4<text>`: a Socket.IO packet.
    Message(String),
    /// `5`: transport upgrade.
    Upgrade,
    /// `6`: no operation.
    Noop,
}

/// The handshake data of an Engine.IO `open` packet.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInfo {
    /// Engine.IO session id.
    pub sid: String,
    /// Transports the connection may upgrade to.
    #[serde(default)]
    pub upgrades: Vec<String>,
    /// Milliseconds between server pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// Largest payload the server accepts, in bytes.
    #[serde(default)]
    pub max_payload: u64,
}

impl EnginePacket {
    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<Self, CodecError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(CodecError::Empty)?;
        let rest = chars.as_str();
        Ok(match kind {
            '0' => {
                Self::Open(serde_json::from_str(rest).map_err(|e| CodecError::Json(e.to_string()))?)
            }
            '1' => Self::Close,
            '2' => Self::Ping(rest.to_owned()),
            '3' => Self::Pong(rest.to_owned()),
            '4' => Self::Message(rest.to_owned()),
            '5' => Self::Upgrade,
            '6' => Self::Noop,
            other => return Err(CodecError::UnknownType(other)),
        })
    }

    /// Encodes the packet as a text frame. `Open` is server-only and encodes as a bare `0`.
    pub fn encode(&self) -> String {
        match self {
            Self::Open(_) => "0".to_owned(),
            Self::Close => "1".to_owned(),
            Self::Ping(d) => format!("2{d}"),
            Self::Pong(d) => format!("3{d}"),
            Self::Message(m) => format!("4{m}"),
            Self::Upgrade => "5".to_owned(),
            Self::Noop => "6".to_owned(),
        }
    }
}

/// One Socket.IO v5 packet (the payload of an Engine.IO message).
#[derive(Debug, Clone, PartialEq)]
pub enum SocketPacket {
    /// `0`: connect to a namespace, with optional auth data (client) or `{"sid"}` (server).
    Connect {
        /// Namespace, `/` by default.
        nsp: String,
        /// Auth object (client to server) or the socket id object (server to client).
        data: Option<Value>,
    },
    /// `1`: leave a namespace.
    Disconnect {
        /// Namespace.
        nsp: String,
    },
    /// `2`: an event: a JSON array whose first item is the event name.
    Event {
        /// Namespace.
        nsp: String,
        /// Ack id when the sender wants an acknowledgement.
        ack: Option<u64>,
        /// The event name.
        name: String,
        /// The arguments after the name.
        args: Vec<Value>,
    },
    /// `3`: the answer to an event that asked for an ack.
    Ack {
        /// Namespace.
        nsp: String,
        /// The id of the acknowledged event.
        ack: u64,
        /// Arguments of the ack.
        args: Vec<Value>,
    },
    /// `4`: the server refused the namespace connection.
    ConnectError {
        /// Namespace.
        nsp: String,
        /// The reason, usually `{"message": ..}`.
        data: Value,
    },
}

impl SocketPacket {
    /// A client's connect packet for namespace `/` with `auth`.
    pub fn connect(auth: Value) -> Self {
        Self::Connect {
            nsp: "/".to_owned(),
            data: Some(auth),
        }
    }

    /// An event on namespace `/` without ack.
    pub fn event(name: impl Into<String>, args: Vec<Value>) -> Self {
        Self::Event {
            nsp: "/".to_owned(),
            ack: None,
            name: name.into(),
            args,
        }
    }

    /// Decodes the text of an Engine.IO message.
    pub fn decode(text: &str) -> Result<Self, CodecError> {
        let bytes = text.as_bytes();
        let kind = *bytes.first().ok_or(CodecError::Empty)? as char;
        let mut pos = 1;
        if kind == '5' || kind == '6' {
            return Err(CodecError::Binary);
        }
        if !('0'..='4').contains(&kind) {
            return Err(CodecError::UnknownType(kind));
        }
        let mut nsp = "/".to_owned();
        if bytes.get(pos) == Some(&b'/') {
            let end = text[pos..].find(',').map(|i| pos + i).unwrap_or(text.len());
            nsp = text[pos..end].to_owned();
            pos = (end + 1).min(text.len());
        }
        let digits_end = text[pos..]
            .find(|c: char| !c.is_ascii_digit())
            .map(|i| pos + i)
            .unwrap_or(text.len());
        let ack = if digits_end > pos {
            Some(
                text[pos..digits_end]
                    .parse::<u64>()
                    .map_err(|_| CodecError::Malformed("ack id out of range"))?,
            )
        } else {
            None
        };
        pos = digits_end;
        let json = &text[pos..];
        let data = if json.is_empty() {
            None
        } else {
            Some(serde_json::from_str::<Value>(json).map_err(|e| CodecError::Json(e.to_string()))?)
        };
        match kind {
            '0' => Ok(Self::Connect { nsp, data }),
            '1' => Ok(Self::Disconnect { nsp }),
            '2' => {
                let Some(Value::Array(mut items)) = data else {
                    return Err(CodecError::Malformed("event data must be an array"));
                };
                if items.is_empty() {
                    return Err(CodecError::Malformed("event array has no name"));
                }
                let Value::String(name) = items.remove(0) else {
                    return Err(CodecError::Malformed("event name must be a string"));
                };
                Ok(Self::Event {
                    nsp,
                    ack,
                    name,
                    args: items,
                })
            }
            '3' => {
                let ack = ack.ok_or(CodecError::Malformed("ack without id"))?;
                let Some(Value::Array(args)) = data else {
                    return Err(CodecError::Malformed("ack data must be an array"));
                };
                Ok(Self::Ack { nsp, ack, args })
            }
            _ => Ok(Self::ConnectError {
                nsp,
                data: data.unwrap_or(Value::Null),
            }),
        }
    }

    /// Encodes the packet as the text of an Engine.IO message (without the `4` prefix).
    pub fn encode(&self) -> String {
        fn head(out: &mut String, kind: char, nsp: &str) {
            out.push(kind);
            if nsp != "/" {
                out.push_str(nsp);
                out.push(',');
            }
        }
        let mut out = String::new();
        match self {
            Self::Connect { nsp, data } => {
                head(&mut out, '0', nsp);
                if let Some(d) = data {
                    out.push_str(&d.to_string());
                }
            }
            Self::Disconnect { nsp } => head(&mut out, '1', nsp),
            Self::Event {
                nsp,
                ack,
                name,
                args,
            } => {
                head(&mut out, '2', nsp);
                if let Some(a) = ack {
                    out.push_str(&a.to_string());
                }
                let mut items = Vec::with_capacity(args.len() + 1);
                items.push(Value::String(name.clone()));
                items.extend(args.iter().cloned());
                out.push_str(&Value::Array(items).to_string());
            }
            Self::Ack { nsp, ack, args } => {
                head(&mut out, '3', nsp);
                out.push_str(&ack.to_string());
                out.push_str(&Value::Array(args.clone()).to_string());
            }
            Self::ConnectError { nsp, data } => {
                head(&mut out, '4', nsp);
                out.push_str(&data.to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_length_is_that_of_the_json_sent() {
        let update = serde_json::json!({ "id": 7, "delta": { "s": "ä\"" } });
        let text = serde_json::to_string(&update).unwrap();
        assert_eq!(wire_len(&update), text.len() as u64);
    }
    use serde_json::json;

    #[test]
    fn decodes_open_packet() {
        let p = EnginePacket::decode(
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        )
        .unwrap();
        let EnginePacket::Open(info) = p else {
            panic!("not open: {p:?}")
        };
        assert_eq!(info.sid, "lv_VI97HAXpY6yYWAAAC");
        assert_eq!(info.ping_interval, 25000);
    }

    #[test]
    fn ping_pong_round_trip() {
        assert_eq!(
            EnginePacket::decode("2").unwrap(),
            EnginePacket::Ping(String::new())
        );
        assert_eq!(EnginePacket::Pong(String::new()).encode(), "3");
        assert_eq!(
            EnginePacket::decode("3probe").unwrap(),
            EnginePacket::Pong("probe".into())
        );
    }

    #[test]
    fn engine_rejects_unknown_type() {
        assert_eq!(EnginePacket::decode("9"), Err(CodecError::UnknownType('9')));
        assert_eq!(EnginePacket::decode(""), Err(CodecError::Empty));
    }

    #[test]
    fn connect_with_auth_encodes_like_the_js_client() {
        let p = SocketPacket::connect(json!({"token": "abc"}));
        assert_eq!(p.encode(), r#"0{"token":"abc"}"#);
        assert_eq!(SocketPacket::decode(r#"0{"token":"abc"}"#).unwrap(), p);
    }

    #[test]
    fn connect_answer_with_sid() {
        let p = SocketPacket::decode(r#"0{"sid":"x1"}"#).unwrap();
        assert_eq!(
            p,
            SocketPacket::Connect {
                nsp: "/".into(),
                data: Some(json!({"sid": "x1"}))
            }
        );
    }

    #[test]
    fn event_with_namespace_and_ack() {
        let p = SocketPacket::decode(r#"2/admin,12["hello",1,{"a":2}]"#).unwrap();
        assert_eq!(
            p,
            SocketPacket::Event {
                nsp: "/admin".into(),
                ack: Some(12),
                name: "hello".into(),
                args: vec![json!(1), json!({"a": 2})],
            }
        );
        assert_eq!(p.encode(), r#"2/admin,12["hello",1,{"a":2}]"#);
    }

    #[test]
    fn plain_event_round_trip() {
        let p = SocketPacket::event("event", vec![json!({"id": 1})]);
        assert_eq!(p.encode(), r#"2["event",{"id":1}]"#);
        assert_eq!(SocketPacket::decode(&p.encode()).unwrap(), p);
    }

    #[test]
    fn ack_decodes() {
        assert_eq!(
            SocketPacket::decode(r#"35["ok"]"#).unwrap(),
            SocketPacket::Ack {
                nsp: "/".into(),
                ack: 5,
                args: vec![json!("ok")]
            }
        );
        assert_eq!(
            SocketPacket::decode("3[1]"),
            Err(CodecError::Malformed("ack without id"))
        );
    }

    #[test]
    fn connect_error_and_disconnect() {
        assert_eq!(
            SocketPacket::decode(r#"4{"message":"Not authorized"}"#).unwrap(),
            SocketPacket::ConnectError {
                nsp: "/".into(),
                data: json!({"message": "Not authorized"})
            }
        );
        assert_eq!(
            SocketPacket::decode("1").unwrap(),
            SocketPacket::Disconnect { nsp: "/".into() }
        );
        assert_eq!(
            SocketPacket::Disconnect {
                nsp: "/chat".into()
            }
            .encode(),
            "1/chat,"
        );
    }

    #[test]
    fn binary_packets_are_refused_clearly() {
        let err =
            SocketPacket::decode(r#"51-["upload",{"_placeholder":true,"num":0}]"#).unwrap_err();
        assert_eq!(err, CodecError::Binary);
        assert_eq!(err.to_string(), "binary attachments are not supported");
        assert_eq!(SocketPacket::decode("61-0[]"), Err(CodecError::Binary));
    }

    #[test]
    fn malformed_events_are_errors() {
        assert!(matches!(
            SocketPacket::decode("2{}"),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            SocketPacket::decode("2[]"),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            SocketPacket::decode("2[1]"),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            SocketPacket::decode("2[oops"),
            Err(CodecError::Json(_))
        ));
        assert_eq!(SocketPacket::decode("7"), Err(CodecError::UnknownType('7')));
    }
}
