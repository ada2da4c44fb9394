//! The progress bar on stderr, and what it says about a trial.

use gossip_sim::Progress;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{Args, ScenarioKind};

pub(crate) fn progress_bar(args: &Args) -> ProgressBar {
    let total = if args.scenario == ScenarioKind::Chaos { args.seeds } else { args.trials };
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] trial {pos}/{len} {bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub(crate) fn describe(progress: Progress) -> String {
    match progress {
        Progress::Idle { round, of } => format!("idling {round}/{of}"),
        Progress::Spreading { round, informed, live } => format!("round {round}: {informed}/{live} informed"),
        Progress::Measuring { round, of } => format!("measuring {round}/{of}"),
        Progress::Settling { period, of } => format!("settling {period}/{of}"),
        Progress::Running { period, of } => format!("period {period}/{of}"),
        Progress::Waiting { seconds, done, of } => format!("{seconds} s: {done}/{of} members"),
        _ => String::new(),
    }
}
