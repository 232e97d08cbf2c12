//! Provenance of stored objects: every object is an entity `object:BUCKET/KEY`
//! whose `version` attribute is its current `ObjectId` (and `size` its size);
//! a put may name the objects it was derived from and the job that made it,
//! which become `derivation` and `scheduling` edges. So the lineage of data
//! kept in Stemma needs no separate registration. A delete retires the entity
//! (it stays in the graph, flagged), so lineage through deleted data remains
//! explainable.
//!
//! Entity ids are lower-cased, so keys that differ only in case share one
//! entity.

use super::edge::{EdgeKind, EdgeSpec};
use super::edit::Op;
use super::error::ModelError;
use super::model::{Attributes, EntityId, EntityKind, NewEntity};

/// The entity of the object stored as `bucket/key`.
pub fn object_entity(bucket: &str, key: &str) -> Result<EntityId, ModelError> {
    EntityId::new(&EntityKind::Object, &format!("{bucket}/{key}"))
}

/// The job entity a user names as `NAME` or `job:NAME` (or any `KIND:NAME`).
pub fn job_entity(text: &str) -> Result<EntityId, ModelError> {
    if text.contains(':') {
        EntityId::parse(text)
    } else {
        EntityId::new(&EntityKind::Job, text)
    }
}

/// What a put records: the object's entity with its version and size, and
/// edges from each of `derived_from` (`(bucket, key)` pairs) and from `job`.
pub fn ops_for_put(
    bucket: &str,
    key: &str,
    version: &str,
    size: u64,
    derived_from: &[(String, String)],
    job: Option<&EntityId>,
) -> Result<Vec<Op>, ModelError> {
    let id = object_entity(bucket, key)?;
    let mut attributes = Attributes::default();
    attributes.extra.insert("version".into(), version.into());
    attributes.extra.insert("size".into(), size.to_string());
    let mut ops = vec![Op::Upsert(NewEntity {
        id: id.clone(),
        name: format!("{bucket}/{key}"),
        attributes,
    })];
    let mut spec = EdgeSpec::of(EdgeKind::Derivation);
    spec.job = job.cloned();
    for (b, k) in derived_from {
        ops.push(Op::Link {
            source: object_entity(b, k)?,
            target: id.clone(),
            spec: spec.clone(),
        });
    }
    if let Some(job) = job {
        ops.push(Op::Link {
            source: job.clone(),
            target: id,
            spec: EdgeSpec::of(EdgeKind::Scheduling),
        });
    }
    Ok(ops)
}

/// What a delete records: the object's entity is retired.
pub fn ops_for_delete(bucket: &str, key: &str) -> Result<Vec<Op>, ModelError> {
    Ok(vec![Op::Retire {
        id: object_entity(bucket, key)?,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::LineageDoc;

    #[test]
    fn a_derived_object_is_downstream_of_its_sources_and_job() {
        let mut doc = LineageDoc::new("default", b"test").unwrap();
        let job = EntityId::parse("job:resize").unwrap();
        let sources = [("raw".to_string(), "a.png".to_string())];
        let ops = ops_for_put("thumbs", "a.png", "abc123", 42, &sources, Some(&job)).unwrap();
        doc.apply(1, &ops).unwrap();
        let thumb = object_entity("thumbs", "a.png").unwrap();
        let record = doc.index().entity(&thumb).unwrap();
        assert_eq!(record.attributes.extra["version"], "abc123");
        let up = doc
            .index()
            .upstream(&thumb, &crate::lineage::Traversal::depth(1))
            .unwrap();
        let ids: Vec<String> = up.items.iter().map(|r| r.id.to_string()).collect();
        assert_eq!(ids, ["job:resize", "object:raw/a.png"]);
        doc.apply(2, &ops_for_delete("thumbs", "a.png").unwrap())
            .unwrap();
        assert!(doc.index().entity(&thumb).unwrap().retired.is_some());
    }
}
