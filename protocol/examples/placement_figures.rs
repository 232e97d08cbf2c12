//! Prints placement figures for BENCHMARKS.md: balance, replica slots moved on
//! a join and a leave beside the minimum, and the zone check.
//!
//! ```text
//! cargo run --release -p stemma-protocol --example placement_figures
//! ```
//!
//! Nodes have equal capacity and sit in 5 zones (node i in zone i mod 5);
//! RF = 3. A join adds node N in zone N mod 5; a leave removes node 0. The
//! minimum for a join is the new node's count in the next layout (each of its
//! replicas has to arrive); for a leave, the leaving node's count (each of its
//! replicas has to go). Deterministic: no seed, no randomness.

use std::collections::BTreeSet;
use std::time::Instant;

use stemma_protocol::membership::NodeId;
use stemma_protocol::placement::{Layout, NodeSpec, PlacementConfig, View};

const ZONES: u64 = 5;
const RF: u8 = 3;

fn node(i: u64) -> NodeSpec {
    NodeSpec::new(NodeId::synthetic(i), format!("zone-{}", i % ZONES), 1)
}

/// Partitions whose replicas share a zone.
fn zone_violations(layout: &Layout) -> usize {
    layout
        .partitions()
        .all()
        .filter(|&p| {
            let replicas = layout.replicas(p);
            let zones: BTreeSet<&str> = replicas
                .iter()
                .filter_map(|id| layout.node(id).map(|n| n.zone.as_str()))
                .collect();
            zones.len() < replicas.len()
        })
        .count()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "| nodes | partitions | max/mean | min/mean | join: moved / minimum | leave: moved / minimum | moved on join, share of slots (1/(N+1)) | zone violations (5 zones) | initial layout, ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in [5u64, 6, 20, 100] {
        for partitions in [256u32, 1024] {
            let config = PlacementConfig::new(partitions, RF)?;
            let view = View::new((0..n).map(node))?;
            let start = Instant::now();
            let layout = Layout::initial(&view, config)?;
            let took = start.elapsed();

            let counts = layout.replicas_per_node();
            let slots = f64::from(partitions) * f64::from(RF);
            let mean = slots / n as f64;
            let max = *counts.values().max().unwrap_or(&0) as f64;
            let min = *counts.values().min().unwrap_or(&0) as f64;

            let joined = layout.next(&view.with(node(n)))?;
            let join_moved = layout.diff(&joined)?.len();
            let join_min = joined.replicas_per_node()[&NodeId::synthetic(n)];

            let gone = NodeId::synthetic(0);
            let left = layout.next(&view.without(&gone))?;
            let leave_moved = layout.diff(&left)?.len();
            let leave_min = counts[&gone];

            let violations =
                zone_violations(&layout) + zone_violations(&joined) + zone_violations(&left);
            println!(
                "| {n} | {partitions} | {:.3} | {:.3} | {join_moved} / {join_min} | {leave_moved} / {leave_min} | {:.4} ({:.4}) | {violations} | {:.1} |",
                max / mean,
                min / mean,
                join_moved as f64 / slots,
                1.0 / (n + 1) as f64,
                took.as_secs_f64() * 1e3,
            );
        }
    }
    Ok(())
}
