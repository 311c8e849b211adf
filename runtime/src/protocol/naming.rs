//! A state's wire name and the typed actions that name its handlers: what the browser and the
//! server must agree on to address a handler.

use serde::Serialize;
use serde_json::{Map, Value};

/// A state's wire name, the one thing the browser and the server must agree on about a state:
/// events are `<name>.<handler>` and deltas are keyed by it. [`#[ferrule::state]`](macro@crate::state)
/// and [`actions!`](crate::actions) implement it; the server's `State` and the page's
/// `ui::use_state` both read it, so a name set here is seen everywhere.
///
/// ```
/// use ferrule::protocol::StateName;
///
/// struct CartState;
/// impl StateName for CartState {}
/// assert_eq!(CartState::state_name(), "cart_state");
///
/// struct Basket;
/// impl StateName for Basket {
///     const NAME: Option<&'static str> = Some("cart");
/// }
/// assert_eq!(Basket::state_name(), "cart");
/// ```
pub trait StateName: 'static {
    /// The wire name; `None` derives it from the type name (`CartState` → `cart_state`).
    const NAME: Option<&'static str> = None;

    /// The wire name of the state.
    fn state_name() -> String {
        Self::NAME
            .map(str::to_owned)
            .unwrap_or_else(|| state_name_of(std::any::type_name::<Self>()))
    }
}

/// A handler event, typed: the payload a client sends and the handler it runs.
///
/// The browser emits values of these types and the server's handlers take them, so app code names
/// a handler once, in Rust, on both sides. `#[ferrule::state]` writes the types and impls from
/// the handlers' signatures; [`actions!`](crate::actions) writes the impls for types of your own.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Clone, Serialize, Deserialize)]
/// pub struct CounterState { pub count: i64 }
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Increment;
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Add { pub amount: i64 }
///
/// ferrule::actions!(CounterState { increment: Increment, add: Add });
///
/// use ferrule::protocol::Action;
/// assert_eq!(Add::event_name(), "counter_state.add");
/// ```
pub trait Action: Serialize {
    /// The state whose handler runs this action.
    type State: StateName;
    /// The handler's name within its state, e.g. `add_item`.
    const HANDLER: &'static str;

    /// The full wire name, `<state>.<handler>`.
    fn event_name() -> String {
        format!("{}.{}", Self::State::state_name(), Self::HANDLER)
    }

    /// The payload as the wire carries it: an object for structs, `{}` for unit structs.
    fn payload(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Null) | Err(_) => Value::Object(Map::new()),
            Ok(v) => v,
        }
    }
}

/// Implements [`StateName`](crate::protocol::StateName) for a state and
/// [`Action`](crate::protocol::Action) for its payload types: `State { handler: Type, .. }`, or
/// `State as "wire_name" { .. }` to name the state. What `#[ferrule::state]` writes for you.
#[macro_export]
macro_rules! actions {
    (@impls $state:ty { $($handler:ident : $action:ty),* }) => {
        $(
            impl $crate::protocol::Action for $action {
                type State = $state;
                const HANDLER: &'static str = stringify!($handler);
            }
        )*
    };
    ($state:ty { $($handler:ident : $action:ty),* $(,)? }) => {
        impl $crate::protocol::StateName for $state {}
        $crate::actions!(@impls $state { $($handler : $action),* });
    };
    ($state:ty as $name:literal { $($handler:ident : $action:ty),* $(,)? }) => {
        impl $crate::protocol::StateName for $state {
            const NAME: ::core::option::Option<&'static str> = ::core::option::Option::Some($name);
        }
        $crate::actions!(@impls $state { $($handler : $action),* });
    };
}

/// The state name for a Rust type name: the last path segment in snake case.
///
/// `CartState` → `cart_state`, `app::HTTPState` → `http_state`, `Foo<Bar>` → `foo`.
pub fn state_name_of(type_name: &str) -> String {
    let base = type_name.split('<').next().unwrap_or(type_name);
    let base = base.rsplit("::").next().unwrap_or(base);
    let chars: Vec<char> = base.chars().collect();
    let mut out = String::with_capacity(base.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_snake_case() {
        assert_eq!(state_name_of("CartState"), "cart_state");
        assert_eq!(
            state_name_of("my_app::states::CounterState"),
            "counter_state"
        );
        assert_eq!(state_name_of("HTTPState"), "http_state");
        assert_eq!(state_name_of("Foo<bar::Baz>"), "foo");
        assert_eq!(state_name_of("Auth2State"), "auth2_state");
    }
}
