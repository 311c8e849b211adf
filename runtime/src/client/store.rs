//! The client's copy of its states, as JSON objects that deltas are merged into.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::protocol::Delta;

/// Every state the client mirrors, by wire name.
#[derive(Debug, Default, Clone)]
pub struct StateStore {
    states: BTreeMap<String, Map<String, Value>>,
}

impl StateStore {
    /// Starts mirroring state `name` from `initial` (its default value) unless it already is.
    pub fn register<S: Serialize>(&mut self, name: &str, initial: &S) {
        if self.states.contains_key(name) {
            return;
        }
        let map = match serde_json::to_value(initial) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        self.states.insert(name.to_owned(), map);
    }

    /// Merges `delta` field by field. Returns the names of the states that changed, so only
    /// their readers are told.
    pub fn apply(&mut self, delta: &Delta) -> Vec<String> {
        let mut changed = Vec::new();
        for (name, fields) in delta {
            let state = self.states.entry(name.clone()).or_default();
            let mut any = false;
            for (field, value) in fields {
                if state.get(field) != Some(value) {
                    state.insert(field.clone(), value.clone());
                    any = true;
                }
            }
            if any {
                changed.push(name.clone());
            }
        }
        changed
    }

    /// The fields of state `name`, if it is mirrored.
    pub fn fields(&self, name: &str) -> Option<&Map<String, Value>> {
        self.states.get(name)
    }

    /// State `name` as its Rust type. A state whose JSON no longer fits the type (a server of
    /// another version) is an error the caller reports, never a panic.
    pub fn decode<S: DeserializeOwned>(&self, name: &str) -> Result<S, String> {
        let map = self.states.get(name).cloned().unwrap_or_default();
        serde_json::from_value(Value::Object(map)).map_err(|e| format!("state `{name}`: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct CartState {
        items: Vec<u32>,
        note: String,
    }

    fn delta(v: Value) -> Delta {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_delta_changes_only_the_fields_it_names() {
        let mut s = StateStore::default();
        s.register("cart_state", &CartState::default());
        let changed = s.apply(&delta(json!({"cart_state": {"items": [3]}})));
        assert_eq!(changed, ["cart_state"]);
        let cart: CartState = s.decode("cart_state").unwrap();
        assert_eq!(
            cart,
            CartState {
                items: vec![3],
                note: String::new()
            }
        );
    }

    #[test]
    fn an_unchanged_value_changes_nothing() {
        let mut s = StateStore::default();
        s.register("cart_state", &CartState::default());
        assert!(
            s.apply(&delta(json!({"cart_state": {"note": ""}})))
                .is_empty()
        );
    }

    #[test]
    fn registering_twice_keeps_what_arrived() {
        let mut s = StateStore::default();
        s.apply(&delta(json!({"cart_state": {"items": [1], "note": "x"}})));
        s.register("cart_state", &CartState::default());
        assert_eq!(s.decode::<CartState>("cart_state").unwrap().note, "x");
    }

    #[test]
    fn a_field_of_the_wrong_type_is_an_error_not_a_panic() {
        let mut s = StateStore::default();
        s.register("cart_state", &CartState::default());
        s.apply(&delta(json!({"cart_state": {"items": "nope"}})));
        let err = s.decode::<CartState>("cart_state").unwrap_err();
        assert!(err.contains("cart_state"), "{err}");
    }
}
