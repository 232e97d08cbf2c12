//! Recording what the SQL extractor found: the operations that put one SQL
//! text's lineage into the graph.
//!
//! Per statement: every table read → every table written (kind
//! `transformation`, the SQL as rule text, the job if named), every source
//! column → target column (kind `mapping`), and files or stages read or
//! written as `path` entities. With a job, the job is an entity too, linked
//! to each table it writes (kind `scheduling`), so that a written table's
//! upstream and a failed job's root cause include it. Statements are recorded
//! one by one, so a script's temporary tables appear as the intermediates
//! they are.

use crate::sql::SqlLineage;

use super::edge::{EdgeKind, EdgeSpec};
use super::edit::Op;
use super::error::ModelError;
use super::model::{EntityId, EntityKind, MAX_VALUE_LEN, NewEntity};

/// The operations recording `lineage`, extracted from `sql`, as done by `job`.
pub fn ops_for_sql(
    lineage: &SqlLineage,
    sql: &str,
    job: Option<&EntityId>,
) -> Result<Vec<Op>, ModelError> {
    let rule = truncate(sql.trim(), MAX_VALUE_LEN);
    let mut ops = Vec::new();
    if let Some(job) = job {
        ops.push(Op::Upsert(NewEntity {
            id: job.clone(),
            name: job.name().to_string(),
            attributes: Default::default(),
        }));
    }
    let table = |name: &str| EntityId::new(&EntityKind::Table, name);
    let column = |name: &str| EntityId::new(&EntityKind::Column, name);
    let path = |name: &str| EntityId::new(&EntityKind::parse("path")?, name);
    let spec = |kind: EdgeKind| {
        let mut spec = EdgeSpec::of(kind);
        spec.rule = Some(rule.to_string());
        spec.job = job.cloned();
        spec
    };
    let link = |ops: &mut Vec<Op>, source: EntityId, target: EntityId, spec: &EdgeSpec| {
        ops.push(Op::Link {
            source,
            target,
            spec: spec.clone(),
        });
    };
    for statement in &lineage.statements {
        let transform = spec(EdgeKind::Transformation);
        for target in &statement.targets {
            let target = table(target)?;
            for source in &statement.sources {
                link(&mut ops, table(source)?, target.clone(), &transform);
            }
            for read in &statement.path_reads {
                link(&mut ops, path(read)?, target.clone(), &transform);
            }
            if let Some(job) = job {
                link(
                    &mut ops,
                    job.clone(),
                    target.clone(),
                    &spec(EdgeKind::Scheduling),
                );
            }
        }
        for written in &statement.path_writes {
            for source in &statement.sources {
                link(&mut ops, table(source)?, path(written)?, &transform);
            }
        }
        let mapping = spec(EdgeKind::Mapping);
        for pair in &statement.columns {
            let target = column(&pair.target)?;
            for source in &pair.sources {
                link(&mut ops, column(source)?, target.clone(), &mapping);
            }
        }
    }
    Ok(ops)
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{SqlOptions, extract};

    #[test]
    fn a_script_records_tables_columns_and_the_job() {
        let sql = "CREATE TEMP TABLE t AS SELECT id, amount FROM raw.orders;\n\
                   INSERT INTO marts.revenue (id, total) SELECT id, amount FROM t;";
        let lineage = extract(sql, &SqlOptions::default()).unwrap();
        let job = EntityId::parse("job:nightly").unwrap();
        let ops = ops_for_sql(&lineage, sql, Some(&job)).unwrap();
        let links: Vec<(String, String)> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Link { source, target, .. } => Some((source.to_string(), target.to_string())),
                _ => None,
            })
            .collect();
        for (source, target) in [
            ("table:raw.orders", "table:t"),
            ("table:t", "table:marts.revenue"),
            ("job:nightly", "table:marts.revenue"),
            ("column:raw.orders.amount", "column:t.amount"),
            ("column:t.amount", "column:marts.revenue.total"),
        ] {
            assert!(
                links.contains(&(source.to_string(), target.to_string())),
                "{source} → {target} missing from {links:?}"
            );
        }
        let Op::Link { spec, .. } = &ops[1] else {
            panic!("expected a link, got {:?}", ops[1]);
        };
        assert_eq!(spec.job.as_ref(), Some(&job));
        assert!(
            spec.rule
                .as_deref()
                .unwrap()
                .starts_with("CREATE TEMP TABLE")
        );
    }

    #[test]
    fn long_sql_is_cut_at_a_character_boundary() {
        let text = "é".repeat(10);
        assert_eq!(truncate(&text, 5), "éé");
    }
}
