//! `--plot FILE.svg`: the mean informed fraction per round against the logistic curve of the
//! textbook push model, with the theoretical round count.

use std::path::Path;

use gossip_sim::trial::SpreadOutcome;
use plotters::prelude::*;

use crate::args::{Args, mode, value_name};

/// The seed's logistic curve as a fraction: `y(t) / n` with `y(t) = (n+1) / (1 + n e^{-β (n+1) t})`
/// and `β = b / n`.
pub(crate) fn logistic_fraction(n: f64, b: f64, t: f64) -> f64 {
    let beta = b / n;
    (n + 1.0) / (1.0 + n * (-beta * (n + 1.0) * t).exp()) / n
}

pub(crate) fn plot(
    path: &Path,
    args: &Args,
    outcomes: &[SpreadOutcome],
    theory: Option<(f64, String)>,
) -> Result<(), Box<dyn std::error::Error>> {
    const STEPS_PER_ROUND: usize = 10;
    let slowest = outcomes.iter().map(|o| o.rounds.unwrap_or(f64::from(args.max_rounds))).fold(0.0, f64::max);
    let horizon = slowest.max(theory.as_ref().map_or(0.0, |(t, _)| *t)).ceil() + 1.0;
    let points = (horizon as usize) * STEPS_PER_ROUND;
    let measured: Vec<(f64, f64)> = (0..=points)
        .map(|step| {
            let t = step as f64 / STEPS_PER_ROUND as f64;
            let mean =
                outcomes.iter().map(|o| o.informed_fraction_at(t)).sum::<f64>() / outcomes.len() as f64;
            (t, mean)
        })
        .collect();
    let (n, b) = (args.nodes as f64, args.fanout.unwrap_or(1) as f64);
    let logistic: Vec<(f64, f64)> = measured.iter().map(|(t, _)| (*t, logistic_fraction(n, b, *t))).collect();

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "{} nodes, {}, fanout {}, loss {}: informed fraction per round ({} trials)",
        args.nodes,
        value_name(mode(args)),
        args.fanout.unwrap_or(1),
        args.loss,
        outcomes.len()
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..horizon, 0.0..1.05)?;
    chart.configure_mesh().x_desc("rounds (gossip intervals)").y_desc("fraction informed").draw()?;
    chart
        .draw_series(LineSeries::new(measured, BLUE.stroke_width(2)))?
        .label("simulated (mean over trials)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(logistic, RED.stroke_width(2)))?
        .label("logistic y(t)/n, beta = b/n")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    if let Some((rounds, formula)) = theory {
        chart
            .draw_series(LineSeries::new([(rounds, 0.0), (rounds, 1.05)], BLACK.stroke_width(1)))?
            .label(format!("theory {formula} = {rounds:.1}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
