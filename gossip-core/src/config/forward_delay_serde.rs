//! `rumor_forward_delay` in a config file: a duration such as "20ms", or "off" for `None`
//! (TOML has no null, so `None` needs a spelling of its own to survive a round trip).

use std::time::Duration;

use humantime_serde::re::humantime;
use serde::{Deserialize, Deserializer, Serializer};

/// The spelling of `None`.
const OFF: &str = "off";

pub(crate) fn serialize<S: Serializer>(delay: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match delay {
        Some(delay) => serializer.collect_str(&humantime::format_duration(*delay)),
        None => serializer.serialize_str(OFF),
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text == OFF {
        return Ok(None);
    }
    humantime::parse_duration(&text).map(Some).map_err(|error| {
        serde::de::Error::custom(format!("{error}: expected a duration such as \"20ms\", or \"off\""))
    })
}
