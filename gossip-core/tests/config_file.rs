//! `Config` loads from TOML (feature `serde`): the documented example parses, validates and
//! means what it says; a partial file takes the rest from `Config::lan()`; durations read as
//! "300ms"; unknown fields and bad values are refused with a message naming them.
#![cfg(feature = "serde")]

use std::time::Duration;

use gossip_core::{AntiEntropyMode, Config, EncryptionMode};

const EXAMPLE: &str = include_str!("../../docs/config-example.toml");

#[test]
fn the_documented_example_loads_and_is_valid() {
    let config: Config = toml::from_str(EXAMPLE).expect("docs/config-example.toml parses");
    config.validate().expect("the example is valid");
    assert_eq!(config.cluster, "payments-prod");
    assert_eq!(config.gossip_interval, Duration::from_millis(200));
    assert_eq!(config.tombstone_grace, Duration::from_secs(3600));
    assert_eq!(config.swim.dead_retention, Duration::from_secs(600));
    assert_eq!(config.mode, AntiEntropyMode::PushPull);
    assert_eq!(config.encryption, EncryptionMode::Off);
    // Apart from the cluster, the example spells out `Config::lan()`.
    assert_eq!(config, Config::lan().with_cluster("payments-prod"));
}

#[test]
fn a_partial_file_takes_the_rest_from_lan() {
    let config: Config = toml::from_str(
        "cluster = \"c\"\ngossip_interval = \"300ms\"\nmode = \"pull\"\n[swim]\nprobe_interval = \"2s\"\n",
    )
    .unwrap();
    let mut expected = Config::lan().with_cluster("c");
    expected.gossip_interval = Duration::from_millis(300);
    expected.mode = AntiEntropyMode::Pull;
    expected.swim.probe_interval = Duration::from_secs(2);
    assert_eq!(config, expected);
}

#[test]
fn a_config_survives_a_round_trip() {
    let mut config = Config::local().with_cluster("round-trip");
    config.encryption = EncryptionMode::Accept;
    let text = toml::to_string(&config).unwrap();
    assert!(text.contains("gossip_interval = \"100ms\""), "{text}");
    assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);
}

#[test]
fn typos_and_bad_values_are_refused_by_name() {
    let typo = toml::from_str::<Config>("gossip_intervall = \"1s\"").unwrap_err().to_string();
    assert!(typo.contains("gossip_intervall"), "{typo}");
    let unit = toml::from_str::<Config>("gossip_interval = \"1 fortnight\"").unwrap_err().to_string();
    assert!(unit.contains("gossip_interval") || unit.contains("fortnight"), "{unit}");
    let mode = toml::from_str::<Config>("mode = \"gossip\"").unwrap_err().to_string();
    assert!(mode.contains("push-pull"), "the error lists the accepted modes: {mode}");
    // Parsing is not validating: a nonsense value parses, and `validate` names it.
    let config: Config = toml::from_str("max_nodes = 1").unwrap();
    assert!(config.validate().unwrap_err().to_string().contains("max_nodes"));
}

#[test]
fn forwarding_reads_as_a_duration_or_off_and_round_trips() {
    let config: Config = toml::from_str("rumor_forward_delay = \"50ms\"").unwrap();
    assert_eq!(config.rumor_forward_delay, Some(Duration::from_millis(50)));
    let config: Config = toml::from_str("rumor_forward_delay = \"off\"").unwrap();
    assert_eq!(config.rumor_forward_delay, None);
    let text = toml::to_string(&config).unwrap();
    assert!(text.contains("rumor_forward_delay = \"off\""), "{text}");
    assert_eq!(toml::from_str::<Config>(&text).unwrap(), config, "None survives the round trip");
    let bad = toml::from_str::<Config>("rumor_forward_delay = \"soon\"").unwrap_err().to_string();
    assert!(bad.contains("rumor_forward_delay") && bad.contains("\"off\""), "{bad}");
}
