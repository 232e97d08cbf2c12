//! A versioned assignment of every partition to its replicas, and the moves
//! between two versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::membership::NodeId;
use crate::placement::assign::assign;
use crate::placement::{
    NodeSpec, Partition, PartitionCount, PlacementConfig, PlacementError, View,
};

/// Which nodes hold each partition, in slot order, computed from a [`View`].
///
/// Slot order matters: slot 0 is the partition's first replica (the one a
/// coordinator may prefer), and a replica keeps its slot from one version to
/// the next unless it moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    version: u64,
    config: PlacementConfig,
    view: View,
    replicas: Vec<Vec<NodeId>>,
}

/// One replica slot that changes hands between two layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Move {
    /// The partition.
    pub partition: Partition,
    /// The replica slot, `0 .. RF`.
    pub slot: u8,
    /// Who held it; `None` if the slot is new (RF grew with the view).
    pub from: Option<NodeId>,
    /// Who holds it now; `None` if the slot is gone (fewer nodes than RF).
    pub to: Option<NodeId>,
}

impl Layout {
    /// The default layout of nodes `1..=n`, each in a zone of its own, with
    /// equal capacities: the common case of the protocol's tests.
    #[cfg(test)]
    pub(crate) fn of_test_nodes(n: u64) -> Layout {
        let view =
            View::new((1..=n).map(|i| NodeSpec::new(NodeId::synthetic(i), format!("z{i}"), 1)))
                .expect("distinct test nodes");
        Layout::initial(&view, PlacementConfig::default()).expect("a layout of test nodes")
    }

    /// Version 1: the first layout of a cluster.
    pub fn initial(view: &View, config: PlacementConfig) -> Result<Self, PlacementError> {
        let replicas = assign(&config, view, None)?;
        Ok(Self {
            version: 1,
            config,
            view: view.clone(),
            replicas,
        })
    }

    /// The next version for `view`, moving as few replicas as the new targets
    /// allow. Same layout and same view give the same result on every node.
    pub fn next(&self, view: &View) -> Result<Self, PlacementError> {
        let replicas = assign(&self.config, view, Some(&self.replicas))?;
        Ok(Self {
            version: self.version + 1,
            config: self.config,
            view: view.clone(),
            replicas,
        })
    }

    /// The version: 1 for the first layout, one more for each next.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The settings this layout was made with.
    pub fn config(&self) -> PlacementConfig {
        self.config
    }

    /// The number of partitions.
    pub fn partitions(&self) -> PartitionCount {
        self.config.partitions
    }

    /// The view this layout was computed from.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The node `id` as the view describes it.
    pub fn node(&self, id: &NodeId) -> Option<&NodeSpec> {
        self.view.node(id)
    }

    /// The replicas of `partition`, in slot order: RF distinct nodes, or every
    /// node with capacity if there are fewer than RF.
    pub fn replicas(&self, partition: Partition) -> &[NodeId] {
        self.replicas
            .get(partition.index() as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// Copies per partition: RF, or fewer if the view has fewer nodes with
    /// capacity than RF.
    pub fn replication(&self) -> usize {
        self.replicas.first().map_or(0, Vec::len)
    }

    /// Whether `node` holds a replica of `partition`.
    pub fn holds(&self, node: &NodeId, partition: Partition) -> bool {
        self.replicas(partition).contains(node)
    }

    /// The partitions `node` holds a replica of, in order.
    pub fn partitions_of(&self, node: &NodeId) -> Vec<Partition> {
        self.partitions()
            .all()
            .filter(|&p| self.holds(node, p))
            .collect()
    }

    /// How many replicas each node of the view holds (0 for a node with none).
    pub fn replicas_per_node(&self) -> BTreeMap<NodeId, usize> {
        let mut counts: BTreeMap<NodeId, usize> =
            self.view.nodes().iter().map(|n| (n.id, 0)).collect();
        for node in self.replicas.iter().flatten() {
            *counts.entry(*node).or_default() += 1;
        }
        counts
    }

    /// The replica slots that change hands from this layout to `next`, by
    /// partition and slot.
    pub fn diff(&self, next: &Layout) -> Result<Vec<Move>, PlacementError> {
        if self.partitions() != next.partitions() {
            return Err(PlacementError::PartitionCountMismatch {
                left: self.partitions().get(),
                right: next.partitions().get(),
            });
        }
        let mut moves = Vec::new();
        for partition in self.partitions().all() {
            let (old, new) = (self.replicas(partition), next.replicas(partition));
            for slot in 0..old.len().max(new.len()) {
                let (from, to) = (old.get(slot).copied(), new.get(slot).copied());
                if from != to {
                    moves.push(Move {
                        partition,
                        slot: u8::try_from(slot).unwrap_or(u8::MAX),
                        from,
                        to,
                    });
                }
            }
        }
        Ok(moves)
    }
}
