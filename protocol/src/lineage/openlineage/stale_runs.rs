//! Run states that arrive late. Events come out of order (a late START after
//! a FAIL, a retried RUNNING after the COMPLETE), and the run a job shows must
//! be its latest, not the last delivered.

use std::collections::HashMap;

use crate::lineage::edit::Op;
use crate::lineage::index::GraphIndex;
use crate::lineage::model::{EntityId, Millis};

/// Drops run states older than the run recorded for their entity, or than
/// one kept earlier through the same filter. Feed it a batch's operations in
/// the order they will be applied: of two states of one job in one batch,
/// the older is dropped whichever came first.
#[derive(Debug)]
pub struct StaleRuns<'a> {
    index: Option<&'a GraphIndex>,
    kept: HashMap<EntityId, Millis>,
}

impl<'a> StaleRuns<'a> {
    /// A filter against what `index` records (`None`: nothing recorded yet).
    pub fn new(index: Option<&'a GraphIndex>) -> Self {
        Self {
            index,
            kept: HashMap::new(),
        }
    }

    /// `ops` without the stale run states.
    pub fn filter(&mut self, ops: Vec<Op>) -> Vec<Op> {
        ops.into_iter()
            .filter(|op| {
                let Op::SetRun { id, run } = op else {
                    return true;
                };
                let latest = self.kept.get(id).copied().or_else(|| {
                    self.index
                        .and_then(|index| index.last_run(id))
                        .map(|last| last.time)
                });
                let keep = latest.is_none_or(|time| time <= run.time);
                if keep {
                    self.kept.insert(id.clone(), run.time);
                }
                keep
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::{LineageDoc, NewEntity, RunState, RunStatus};

    fn run(status: RunStatus, time: Millis) -> Op {
        Op::SetRun {
            id: EntityId::parse("job:load").unwrap(),
            run: RunState {
                status,
                time,
                message: None,
            },
        }
    }

    #[test]
    fn a_late_older_run_state_does_not_replace_a_newer_one() {
        let mut doc = LineageDoc::new("default", b"test").unwrap();
        doc.apply(0, &[Op::Upsert(NewEntity::parse("job:load").unwrap())])
            .unwrap();
        doc.apply(0, &[run(RunStatus::Fail, 2_000)]).unwrap();
        let late = StaleRuns::new(Some(doc.index())).filter(vec![run(RunStatus::Start, 1_000)]);
        assert!(late.is_empty());
        let newer = StaleRuns::new(Some(doc.index())).filter(vec![run(RunStatus::Complete, 3_000)]);
        assert_eq!(newer.len(), 1);
    }

    #[test]
    fn of_two_states_in_one_batch_the_older_is_dropped_whichever_came_first() {
        let mut filter = StaleRuns::new(None);
        let kept = filter.filter(vec![run(RunStatus::Complete, 2_000)]);
        assert_eq!(kept.len(), 1);
        assert!(filter.filter(vec![run(RunStatus::Start, 1_000)]).is_empty());
        let mut filter = StaleRuns::new(None);
        let both = filter.filter(vec![
            run(RunStatus::Start, 1_000),
            run(RunStatus::Complete, 2_000),
        ]);
        assert_eq!(both.len(), 2);
    }
}
