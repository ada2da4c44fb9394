//! Where a trial is, for progress reports: every study calls its `progress` callback once per
//! simulated interval or probe period with one of these.

/// Where a trial is, for progress reports (one per simulated interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The cluster was built and idles; `round` of `of` done.
    Idle {
        /// Intervals idled.
        round: u32,
        /// Intervals to idle.
        of: u32,
    },
    /// The write is spreading.
    Spreading {
        /// Intervals since the write.
        round: u32,
        /// Live nodes that have it.
        informed: usize,
        /// Live nodes.
        live: usize,
    },
    /// Background traffic is being measured.
    Measuring {
        /// Intervals measured.
        round: u32,
        /// Intervals to measure.
        of: u32,
    },
    /// A membership trial's cluster settles before its fault.
    Settling {
        /// Probe periods done.
        period: u32,
        /// Probe periods to settle.
        of: u32,
    },
    /// A membership trial runs for a planned number of probe periods.
    Running {
        /// Probe periods done.
        period: u32,
        /// Probe periods planned.
        of: u32,
    },
    /// A membership trial waits for the members to reach a state.
    Waiting {
        /// Seconds waited so far.
        seconds: u32,
        /// Members in that state.
        done: usize,
        /// Members to wait for.
        of: usize,
    },
}
