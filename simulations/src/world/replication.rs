//! Replication in the simulated world, planned by the protocol's own
//! planners: the layout (`protocol::placement::Layout`) is recomputed from
//! the view whenever the cluster agrees a node is gone (every live node
//! declared it dead, or recorded its leave) or a node starts, and the copies
//! that layout change requires come from `protocol::replication::repair_plan`.
//! Each copy moves a partition's bytes (not materialised) at each node's
//! repair bandwidth, one transfer at a time per sender and per receiver.
//!
//! Measured: partitions with fewer live copies than RF (under-replicated),
//! with none (unavailable), lost for good, the repair traffic, and the time
//! from each disruption until every partition has RF live copies again.

use std::collections::BTreeSet;

use stemma_protocol::membership::NodeId;
use stemma_protocol::placement::{Layout, NodeSpec, Partition, PlacementConfig, View};
use stemma_protocol::replication::repair_plan;

use super::{Event, World, micros, node_id, seconds, slot_of};
use crate::metrics::{Distribution, ReplicationMetrics};
use crate::network::Micros;
use crate::scenario::ReplicationSettings;

/// The replication part of a world.
#[derive(Debug)]
pub(super) struct ReplicationPart {
    settings: ReplicationSettings,
    layout: Layout,
    /// Nodes holding a complete copy of each partition.
    holders: Vec<Vec<NodeId>>,
    /// When each node's repair link is free again (sending, receiving).
    busy: Vec<(Micros, Micros)>,
    in_flight: u64,
    transfers: u64,
    repair_bytes: u64,
    layout_changes: u64,
    /// Since when some partition has had fewer than RF live copies.
    degraded_since: Option<Micros>,
    restore: Vec<f64>,
    under_seconds: f64,
    unavailable_seconds: f64,
    max_under: u64,
}

/// A copy finished.
#[derive(Debug)]
pub(super) struct Copied {
    partition: u32,
    to: NodeId,
}

impl ReplicationPart {
    fn partition_bytes(&self) -> u64 {
        (self.settings.data_bytes / f64::from(self.settings.partitions)) as u64
    }
}

impl World {
    fn replication(&mut self) -> &mut ReplicationPart {
        self.replication
            .as_mut()
            .expect("only called when replication is simulated")
    }

    fn is_live_id(&self, id: &NodeId) -> bool {
        let (slot, identity) = slot_of(id);
        self.nodes
            .get(slot as usize)
            .is_some_and(|n| n.identity == identity && n.life.is_live())
    }

    fn spec(&self, slot: u32) -> NodeSpec {
        let node = &self.nodes[slot as usize];
        NodeSpec::new(node_id(slot, node.identity), format!("z{}", node.zone), 1)
    }

    /// The initial layout, every copy in place: called once the initial nodes
    /// exist.
    pub(super) fn replication_init(
        settings: &ReplicationSettings,
        world: &World,
    ) -> ReplicationPart {
        let view =
            View::new((0..world.scenario.nodes).map(|s| world.spec(s))).expect("distinct ids");
        let config = PlacementConfig::new(settings.partitions, settings.rf).expect("checked");
        let layout = Layout::initial(&view, config).expect("a layout of the initial nodes");
        let holders = config
            .partitions
            .all()
            .map(|p| layout.replicas(p).to_vec())
            .collect();
        ReplicationPart {
            settings: settings.clone(),
            layout,
            holders,
            busy: Vec::new(),
            in_flight: 0,
            transfers: 0,
            repair_bytes: 0,
            layout_changes: 0,
            degraded_since: None,
            restore: Vec::new(),
            under_seconds: 0.0,
            unavailable_seconds: 0.0,
            max_under: 0,
        }
    }

    /// A node started: it joins the layout (a restart with its data is
    /// already in it).
    pub(super) fn replication_started(&mut self, slot: u32, fresh: bool) {
        if self.replication.is_none() {
            return;
        }
        let spec = self.spec(slot);
        if fresh {
            // Whatever an earlier identity of this slot held is gone.
            let node = &self.nodes[slot as usize];
            let current = node.identity;
            for h in &mut self.replication().holders {
                h.retain(|id| {
                    let (s, identity) = slot_of(id);
                    s != slot || identity == current
                });
            }
        }
        if self.replication().layout.node(&spec.id).is_none() {
            let view = self.replication().layout.view().with(spec);
            self.change_layout(view);
        }
        self.check_degraded();
    }

    /// The cluster agreed that `id` is gone: it leaves the layout.
    pub(super) fn replication_gone(&mut self, id: NodeId) {
        if self.replication.is_none() || self.replication().layout.node(&id).is_none() {
            return;
        }
        let view = self.replication().layout.view().without(&id);
        if view.is_empty() {
            return;
        }
        self.change_layout(view);
    }

    /// Live nodes changed: recount.
    pub(super) fn replication_live_changed(&mut self) {
        if self.replication.is_some() {
            self.check_degraded();
        }
    }

    fn change_layout(&mut self, view: View) {
        let live: BTreeSet<NodeId> = (0..self.nodes.len() as u32)
            .filter(|&s| self.nodes[s as usize].life.is_live())
            .map(|s| node_id(s, self.nodes[s as usize].identity))
            .collect();
        let mut part = self.replication();
        let Ok(next) = part.layout.next(&view) else {
            return;
        };
        let plan = repair_plan(&part.layout, &next, &live).expect("same partition count");
        part.layout = next;
        part.layout_changes += 1;
        for t in plan.transfers {
            // A node that comes back with its data already has it.
            if !part.holders[t.partition.index() as usize].contains(&t.to) {
                self.start_copy(t.partition, t.from, t.to);
                part = self.replication();
            }
        }
        self.check_degraded();
    }

    /// Copies a partition `from` → `to` at the repair bandwidth, after the
    /// transfers already queued on either end.
    fn start_copy(&mut self, partition: Partition, from: NodeId, to: NodeId) {
        let now = self.now;
        let n = self.nodes.len();
        let part = self.replication();
        if part.busy.len() < n {
            part.busy.resize(n, (0, 0));
        }
        let bytes = part.partition_bytes();
        let takes = micros(bytes as f64 / part.settings.repair_bytes_per_s);
        let (f, t) = (slot_of(&from).0 as usize, slot_of(&to).0 as usize);
        let start = now.max(part.busy[f].0).max(part.busy[t].1);
        let done = start + takes;
        part.busy[f].0 = done;
        part.busy[t].1 = done;
        part.in_flight += 1;
        self.queue.push(
            done,
            Event::Copied(Copied {
                partition: partition.index(),
                to,
            }),
        );
    }

    pub(super) fn replication_copied(&mut self, copied: Copied) {
        let live = self.is_live_id(&copied.to);
        let part = self.replication();
        part.in_flight -= 1;
        let bytes = part.partition_bytes();
        part.transfers += 1;
        part.repair_bytes += bytes;
        let p = copied.partition as usize;
        let still_replica = part
            .layout
            .partitions()
            .partition(copied.partition)
            .is_some_and(|q| part.layout.replicas(q).contains(&copied.to));
        if live && still_replica && !part.holders[p].contains(&copied.to) {
            part.holders[p].push(copied.to);
        }
        self.check_degraded();
    }

    /// (under-replicated, unavailable) partitions now.
    fn replication_counts(&self) -> (u64, u64) {
        let Some(part) = &self.replication else {
            return (0, 0);
        };
        let rf = part.layout.replication();
        let (mut under, mut unavailable) = (0, 0);
        for (i, p) in part.layout.partitions().all().enumerate() {
            let replicas = part.layout.replicas(p);
            let holders = &part.holders[i];
            let good = holders
                .iter()
                .filter(|h| replicas.contains(h) && self.is_live_id(h))
                .count();
            if good < rf {
                under += 1;
            }
            if !holders.iter().any(|h| self.is_live_id(h)) {
                unavailable += 1;
            }
        }
        (under, unavailable)
    }

    fn check_degraded(&mut self) {
        if self.last_initial_start.is_none() {
            // The initial nodes are still starting.
            return;
        }
        let (under, _) = self.replication_counts();
        let now = self.now;
        let part = self.replication();
        part.max_under = part.max_under.max(under);
        match (under > 0, part.degraded_since) {
            (true, None) => part.degraded_since = Some(now),
            (false, Some(since)) => {
                part.degraded_since = None;
                part.restore.push(seconds(now - since));
            }
            _ => {}
        }
    }

    /// The sample's columns, and the integrals of degraded time.
    pub(super) fn replication_sample(&mut self, interval: f64) -> Option<(u64, u64)> {
        self.replication.as_ref()?;
        let (under, unavailable) = self.replication_counts();
        let part = self.replication();
        part.under_seconds += under as f64 * interval;
        part.unavailable_seconds += unavailable as f64 * interval;
        Some((under, unavailable))
    }

    pub(super) fn replication_metrics(
        &mut self,
        live_node_seconds: f64,
    ) -> Option<ReplicationMetrics> {
        self.replication.as_ref()?;
        let (under, unavailable) = self.replication_counts();
        // Lost: no holder left at all, not even a crashed node that kept its
        // data and may come back.
        let lost = self
            .replication
            .as_ref()
            .map(|part| {
                part.holders
                    .iter()
                    .filter(|h| {
                        !h.iter().any(|id| {
                            let (slot, identity) = slot_of(id);
                            self.nodes[slot as usize].identity == identity
                        })
                    })
                    .count() as u64
            })
            .unwrap_or(0);
        let part = self.replication();
        Some(ReplicationMetrics {
            partitions: part.settings.partitions,
            rf: part.settings.rf,
            layout_changes: part.layout_changes,
            transfers: part.transfers,
            repair_bytes: part.repair_bytes,
            repair_bytes_per_node_s: if live_node_seconds > 0.0 {
                crate::metrics::round6(part.repair_bytes as f64 / live_node_seconds)
            } else {
                0.0
            },
            restore_s: Distribution::of(&part.restore),
            still_degraded_at_end: part.degraded_since.is_some(),
            max_under_replicated: part.max_under,
            under_replicated_partition_seconds: crate::metrics::round6(part.under_seconds),
            unavailable_partition_seconds: crate::metrics::round6(part.unavailable_seconds),
            under_replicated_at_end: under,
            unavailable_at_end: unavailable,
            lost_partitions: lost,
        })
    }
}
