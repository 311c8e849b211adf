//! An optional setting left empty (`FERRULE_METRICS_ADDR=`, as `.env` files and compose files
//! write "off") is unset, not a value that fails to parse.

use figment::value::Value;
use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};

/// Deserializes `Option<T>`, an empty or blank string giving `None`.
pub(super) fn deserialize<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::String(_, s)) if s.trim().is_empty() => Ok(None),
        Some(v) => v.deserialize::<T>().map(Some).map_err(D::Error::custom),
    }
}
