//! Unit tests of `config`.

use super::*;

#[test]
fn every_preset_is_valid_and_wan_detects_failures_with_wan_timings() {
    for config in [Config::lan(), Config::wan(), Config::local(), Config::default()] {
        config.validate().expect("a preset is valid");
    }
    assert_eq!(Config::wan().swim, SwimConfig::wan());
    assert_eq!(Config::default(), Config::lan());
    // `local` detects failures faster than `lan`: it probes more often, with no longer a
    // suspicion (in probe periods).
    let (local, lan) = (Config::local().swim, Config::lan().swim);
    assert!(local.probe_interval < lan.probe_interval);
    assert!(local.suspicion_mult <= lan.suspicion_mult);
}

/// Settings that cannot work are refused with the field named, not accepted silently.
#[test]
fn nonsense_is_refused_by_name() {
    let refused = |change: fn(&mut Config)| {
        let mut config = Config::lan();
        change(&mut config);
        config.validate().unwrap_err()
    };
    assert_eq!(refused(|c| c.max_nodes = 1), ConfigError::TooFewNodes { max_nodes: 1 });
    assert_eq!(
        refused(|c| c.tombstone_grace = Duration::ZERO),
        ConfigError::Zero { field: "tombstone_grace" }
    );
    assert_eq!(
        refused(|c| c.swim.dead_retention = Duration::ZERO),
        ConfigError::Zero { field: "swim.dead_retention" }
    );
    assert_eq!(refused(|c| c.cluster.clear()), ConfigError::EmptyCluster);
    assert_eq!(
        refused(|c| c.swim.max_pending_relays = MAX_PENDING_RELAYS + 1),
        ConfigError::TooLarge {
            field: "swim.max_pending_relays",
            value: MAX_PENDING_RELAYS + 1,
            max: MAX_PENDING_RELAYS
        }
    );
    assert!(matches!(
        refused(|c| c.swim.join_retry_max = Duration::from_millis(100)),
        ConfigError::DurationOrder { longer: "swim.join_retry_max", shorter: "swim.join_retry_initial", .. }
    ));
    let error = refused(|c| c.max_idle_gossip_interval = Duration::from_millis(50));
    assert!(matches!(error, ConfigError::DurationOrder { longer: "max_idle_gossip_interval", .. }));
    assert!(error.to_string().contains("gossip_interval"), "{error}");
}
