//! Plots of a run and of a sweep, as SVG files any browser opens.

use std::path::Path;

use plotters::prelude::*;

use crate::world::Outcome;

/// One line on a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its legend.
    pub label: String,
    /// Its points, in x order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from a label and points.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
        }
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `series` as lines into an SVG file. Empty series are skipped; a chart
/// with no points at all says so.
pub fn line_chart(
    path: &Path,
    title: &str,
    (x_label, y_label): (&str, &str),
    series: &[Series],
) -> std::io::Result<()> {
    let points = || series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
    for &(x, y) in points() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y1) = (0.0, 1.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let y1 = y1 * 1.05;
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()?;
        for (i, s) in series.iter().filter(|s| !s.points.is_empty()).enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        if series.iter().any(|s| !s.points.is_empty()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        } else {
            root.draw(&Text::new("no data", (380, 240), ("sans-serif", 18)))?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| std::io::Error::other(format!("plotting {}: {e}", path.display())))
}

/// An empirical CDF: sorted values against the fraction at or below them.
pub fn cdf(values: &[f64]) -> Vec<(f64, f64)> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    v.iter()
        .enumerate()
        .map(|(i, &x)| (x, (i + 1) as f64 / n))
        .collect()
}

/// Writes a run's plots into `dir`.
pub fn run_plots(outcome: &Outcome, dir: &Path) -> std::io::Result<()> {
    let s = &outcome.samples;
    let over_time = |f: &dyn Fn(&crate::metrics::Sample) -> f64| -> Vec<(f64, f64)> {
        s.iter().map(|x| (x.t, f(x))).collect()
    };
    let name = &outcome.scenario.name;
    line_chart(
        &dir.join("convergence.svg"),
        &format!("{name}: membership views that are exact"),
        ("virtual time (s)", "fraction of live nodes"),
        &[Series::new(
            "exact views",
            over_time(&|x| x.converged_fraction),
        )],
    )?;
    line_chart(
        &dir.join("detection_cdf.svg"),
        &format!("{name}: failure detection time"),
        ("seconds after the crash", "fraction of detections"),
        &[
            Series::new("first node", cdf(&outcome.first_detections)),
            Series::new("each node", cdf(&outcome.observer_detections)),
            Series::new("all nodes", cdf(&outcome.all_detections)),
        ],
    )?;
    line_chart(
        &dir.join("messages.svg"),
        &format!("{name}: messages per node per second"),
        ("virtual time (s)", "messages / node / s"),
        &[
            Series::new("mean", over_time(&|x| x.messages_per_node_s)),
            Series::new("busiest node", over_time(&|x| x.max_messages_per_node_s)),
        ],
    )?;
    line_chart(
        &dir.join("bytes.svg"),
        &format!("{name}: bytes per node per second"),
        ("virtual time (s)", "bytes / node / s"),
        &[Series::new("mean", over_time(&|x| x.bytes_per_node_s))],
    )?;
    line_chart(
        &dir.join("failures.svg"),
        &format!("{name}: crashes not yet known everywhere, and live nodes"),
        ("virtual time (s)", "count"),
        &[
            Series::new("open failures", over_time(&|x| x.open_failures as f64)),
            Series::new(
                "false dead verdicts (cumulative)",
                over_time(&|x| x.false_dead as f64),
            ),
        ],
    )?;
    if outcome.metrics.replication.is_some() {
        line_chart(
            &dir.join("replication.svg"),
            &format!("{name}: partitions short of copies"),
            ("virtual time (s)", "partitions"),
            &[
                Series::new(
                    "under-replicated",
                    over_time(&|x| x.under_replicated.unwrap_or(0) as f64),
                ),
                Series::new(
                    "unavailable",
                    over_time(&|x| x.unavailable.unwrap_or(0) as f64),
                ),
            ],
        )?;
    }
    if outcome.metrics.lineage.is_some() {
        line_chart(
            &dir.join("lineage_cdf.svg"),
            &format!("{name}: lineage edit → visible on every live node"),
            ("seconds", "fraction of edits"),
            &[Series::new("edits", cdf(&outcome.lineage_delays))],
        )?;
        line_chart(
            &dir.join("lineage_pending.svg"),
            &format!("{name}: lineage edits not yet everywhere"),
            ("virtual time (s)", "edits"),
            &[Series::new(
                "pending",
                over_time(&|x| x.lineage_pending.unwrap_or(0) as f64),
            )],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_even_without_points() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.svg");
        line_chart(
            &path,
            "t",
            ("x", "y"),
            &[Series::new("a", vec![(0.0, 1.0), (1.0, 2.0)])],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("polyline"),
            "{text}"
        );
        line_chart(&path, "t", ("x", "y"), &[Series::new("a", vec![])]).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("no data"));
    }

    #[test]
    fn cdf_ends_at_one() {
        assert_eq!(
            cdf(&[3.0, 1.0, 2.0]),
            vec![(1.0, 1.0 / 3.0), (2.0, 2.0 / 3.0), (3.0, 1.0)]
        );
    }
}
