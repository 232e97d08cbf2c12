//! `MERGE`, `UPDATE` and `DELETE`: statements that change a table in place.
//!
//! The changed table is written, never read (even when a `FROM` clause
//! names it again, as T-SQL's `UPDATE alias … FROM t AS alias` does); the
//! tables it is joined with are read. `SET` assignments and `WHEN NOT
//! MATCHED THEN INSERT (…) VALUES (…)` give column lineage. A `DELETE` that
//! reads no other table (`DELETE FROM t WHERE id = 3`) has no lineage; one
//! with `USING` or a subquery makes the target depend on what it read.

use sqlparser::ast::{
    Delete, FromTable, Merge, MergeAction, MergeInsertKind, MergeUpdateKind, TableFactor, Update,
    UpdateTableFromKind,
};

use super::context::Ctx;
use super::expr::{Env, reads_only, sources};
use super::name::{Dataset, Name, ident_name, table_name};
use super::query::column_ref;
use super::scope::{OutCol, Relation, Scope};
use super::statement::{assignment_columns, column_names};
use super::tables::{from_item, relation};

/// The table a DML target names, with its alias.
fn target_table(ctx: &Ctx<'_>, factor: &TableFactor) -> Option<(Name, Option<Name>)> {
    match factor {
        TableFactor::Table { name, alias, .. } => {
            let t = table_name(name, ctx.default_schema())?;
            Some((t, alias.as_ref().map(|a| ident_name(&a.name))))
        }
        _ => None,
    }
}

pub(crate) fn merge(ctx: &mut Ctx<'_>, m: &Merge) {
    let Some((target, alias)) = target_table(ctx, &m.table) else {
        return;
    };
    let mut scope = Scope::new(None);
    relation(ctx, &m.source, &mut scope);
    let source_cols: Vec<OutCol> = scope.rels.iter().flat_map(|r| r.star()).collect();
    let known = ctx.known_columns(&target);
    scope
        .rels
        .push(Relation::table(target.clone(), alias, known));
    ctx.write(Dataset::Table(target.clone()));
    reads_only(ctx, Env::of(&scope), &m.on);
    for clause in &m.clauses {
        if let Some(p) = &clause.predicate {
            reads_only(ctx, Env::of(&scope), p);
        }
        match &clause.action {
            MergeAction::Update(u) => match &u.kind {
                MergeUpdateKind::Set(assignments) => {
                    for a in assignments {
                        let src = sources(ctx, Env::of(&scope), &a.value);
                        for col in assignment_columns(&a.target) {
                            ctx.edge(column_ref(&target, &col), &src);
                        }
                    }
                }
                MergeUpdateKind::Wildcard => {
                    ctx.map_columns(&target, &source_cols, None, "MERGE UPDATE *")
                }
            },
            MergeAction::Insert(ins) => match &ins.kind {
                MergeInsertKind::Values(values) => {
                    let cols = column_names(&ins.columns);
                    for row in &values.rows {
                        let outs: Vec<OutCol> = row
                            .iter()
                            .enumerate()
                            .map(|(i, e)| {
                                let src = sources(ctx, Env::of(&scope), e);
                                OutCol::named(Name::new(format!("column{}", i + 1)), src)
                            })
                            .collect();
                        if cols.is_empty() {
                            match ctx.known_columns(&target) {
                                Some(known) => ctx.map_columns(&target, &outs, Some(&known), "MERGE INSERT"),
                                None => ctx.note(format!(
                                    "MERGE INTO {}: INSERT VALUES without a column list; target columns unknown",
                                    target.text()
                                )),
                            }
                        } else {
                            ctx.map_columns(&target, &outs, Some(&cols), "MERGE INSERT");
                        }
                    }
                }
                MergeInsertKind::Row | MergeInsertKind::Wildcard => {
                    ctx.map_columns(&target, &source_cols, None, "MERGE INSERT")
                }
            },
            MergeAction::Delete { .. } | MergeAction::DoNothing { .. } => {}
        }
    }
}

/// True when `factor` is the DML target itself (by alias or name).
fn is_target(ctx: &Ctx<'_>, factor: &TableFactor, target: &Name, written: &Name) -> bool {
    match factor {
        TableFactor::Table { name, alias, .. } => {
            let by_alias = alias
                .as_ref()
                .is_some_and(|a| ident_name(&a.name) == *written);
            let by_name = table_name(name, ctx.default_schema())
                .is_some_and(|n| n == *target || n == *written);
            by_alias || by_name
        }
        _ => false,
    }
}

pub(crate) fn update(ctx: &mut Ctx<'_>, u: &Update) {
    let Some((written, alias)) = target_table(ctx, &u.table.relation) else {
        return;
    };
    let from: Vec<_> = match &u.from {
        Some(UpdateTableFromKind::BeforeSet(v)) | Some(UpdateTableFromKind::AfterSet(v)) => {
            v.iter().collect()
        }
        None => Vec::new(),
    };
    // T-SQL: `UPDATE sr SET … FROM Production.ScrapReason AS sr` updates the
    // aliased table.
    let aliased = from
        .iter()
        .flat_map(|twj| std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)))
        .find_map(|f| match f {
            TableFactor::Table {
                name,
                alias: Some(a),
                ..
            } if ident_name(&a.name) == written => table_name(name, ctx.default_schema()),
            _ => None,
        });
    let target = aliased.unwrap_or_else(|| written.clone());
    let mut scope = Scope::new(None);
    let known = ctx.known_columns(&target);
    scope.rels.push(Relation::table(
        target.clone(),
        alias.or(Some(written.clone())),
        known,
    ));
    for j in &u.table.joins {
        relation(ctx, &j.relation, &mut scope);
    }
    let mut skipped_target = false;
    for twj in &from {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            if !skipped_target && is_target(ctx, factor, &target, &written) {
                skipped_target = true;
                continue;
            }
            relation(ctx, factor, &mut scope);
        }
        for j in &twj.joins {
            if let sqlparser::ast::JoinOperator::Join(sqlparser::ast::JoinConstraint::On(e))
            | sqlparser::ast::JoinOperator::Inner(sqlparser::ast::JoinConstraint::On(e)) =
                &j.join_operator
            {
                reads_only(ctx, Env::of(&scope), e);
            }
        }
    }
    ctx.write(Dataset::Table(target.clone()));
    for a in &u.assignments {
        let src = sources(ctx, Env::of(&scope), &a.value);
        for col in assignment_columns(&a.target) {
            ctx.edge(column_ref(&target, &col), &src);
        }
    }
    if let Some(sel) = &u.selection {
        reads_only(ctx, Env::of(&scope), sel);
    }
}

pub(crate) fn delete(ctx: &mut Ctx<'_>, d: &Delete) {
    let from = match &d.from {
        FromTable::WithFromKeyword(v) | FromTable::WithoutKeyword(v) => v,
    };
    let mut targets: Vec<Name> = d
        .tables
        .iter()
        .filter_map(|t| table_name(t, ctx.default_schema()))
        .collect();
    if targets.is_empty()
        && let Some((t, _)) = from.first().and_then(|f| target_table(ctx, &f.relation))
    {
        targets.push(t);
    }
    let reads_before = ctx.reads.len();
    let mut scope = Scope::new(None);
    for twj in from {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            let own = targets.iter().any(|t| is_target(ctx, factor, t, t));
            if own {
                if let Some((t, alias)) = target_table(ctx, factor) {
                    let known = ctx.known_columns(&t);
                    scope.rels.push(Relation::table(t, alias, known));
                }
                continue;
            }
            relation(ctx, factor, &mut scope);
        }
    }
    for twj in d.using.iter().flatten() {
        from_item(ctx, twj, &mut scope);
    }
    if let Some(sel) = &d.selection {
        reads_only(ctx, Env::of(&scope), sel);
    }
    if ctx.reads.len() > reads_before {
        for t in targets {
            ctx.write(Dataset::Table(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Dialect, SqlOptions, extract};

    fn ends(sql: &str, d: Dialect) -> (Vec<String>, Vec<String>) {
        let l = extract(sql, &SqlOptions::new(d)).unwrap();
        (l.sources, l.targets)
    }

    #[test]
    fn the_changed_table_is_written_not_read() {
        assert_eq!(
            ends(
                "UPDATE a SET x = b.x FROM a JOIN b ON a.id = b.id",
                Dialect::MsSql
            ),
            (vec!["b".to_string()], vec!["a".to_string()])
        );
        assert_eq!(
            ends(
                "UPDATE t1 a JOIN t2 b ON a.k = b.k SET a.v = b.v",
                Dialect::MySql
            ),
            (vec!["t2".to_string()], vec!["t1".to_string()])
        );
        assert_eq!(
            ends(
                "MERGE INTO t USING s ON t.k = s.k WHEN MATCHED THEN DELETE",
                Dialect::Generic
            ),
            (vec!["s".to_string()], vec!["t".to_string()])
        );
    }

    #[test]
    fn delete_depends_on_what_it_reads() {
        assert_eq!(
            ends("DELETE t1 FROM t1 JOIN t2 ON t1.k = t2.k", Dialect::MySql),
            (vec!["t2".to_string()], vec!["t1".to_string()])
        );
        assert_eq!(ends("DELETE FROM t", Dialect::Generic), (vec![], vec![]));
    }
}
