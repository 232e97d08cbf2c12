//! The `FROM` clause: what each item contributes as a relation, and which
//! tables it reads.
//!
//! Tables are read (and their known columns looked up); a one-part name that
//! matches a CTE in scope is the CTE, never a table; subqueries contribute
//! their output columns; table functions, `UNNEST`, `LATERAL VIEW explode`
//! and JSON tables contribute columns fed by their arguments; files named
//! as tables (Spark's ``parquet.`path` ``) are paths. T-SQL's `t (NOLOCK)`
//! hints are told apart from table-valued function calls.

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Join, JoinConstraint, JoinOperator, LateralView,
    TableAlias, TableFactor, TableWithJoins,
};

use super::context::Ctx;
use super::expr::{Env, reads_only, sources};
use super::name::{Dataset, Name, dataset, ident_name};
use super::query::{query, rename};
use super::scope::{OutCol, Relation, Scope, Sources};

pub(crate) fn from_item(ctx: &mut Ctx<'_>, item: &TableWithJoins, scope: &mut Scope<'_>) {
    relation(ctx, &item.relation, scope);
    for join in &item.joins {
        join_item(ctx, join, scope);
    }
}

fn join_item(ctx: &mut Ctx<'_>, join: &Join, scope: &mut Scope<'_>) {
    relation(ctx, &join.relation, scope);
    let constraint = match &join.join_operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c)
        | JoinOperator::StraightJoin(c) => Some(c),
        JoinOperator::AsOf { constraint, .. } => Some(constraint),
        _ => None,
    };
    if let Some(JoinConstraint::On(e)) = constraint {
        reads_only(ctx, Env::of(scope), e);
    }
}

fn alias_name(alias: &Option<TableAlias>) -> Option<Name> {
    alias.as_ref().map(|a| ident_name(&a.name))
}

/// T-SQL table hints written like function arguments: `t (NOLOCK)`.
const TABLE_HINTS: &[&str] = &[
    "nolock",
    "readuncommitted",
    "readcommitted",
    "readcommittedlock",
    "repeatableread",
    "serializable",
    "snapshot",
    "updlock",
    "holdlock",
    "rowlock",
    "paglock",
    "tablock",
    "tablockx",
    "xlock",
    "nowait",
    "readpast",
    "noexpand",
    "forceseek",
    "forcescan",
    "keepidentity",
    "keepdefaults",
    "ignore_constraints",
    "ignore_triggers",
];

fn is_table_hint(arg: &FunctionArg) -> bool {
    matches!(arg, FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(id)))
        if TABLE_HINTS.contains(&id.value.to_ascii_lowercase().as_str()))
}

/// Adds the relation(s) of one `FROM` item to `scope`.
pub(crate) fn relation(ctx: &mut Ctx<'_>, factor: &TableFactor, scope: &mut Scope<'_>) {
    match factor {
        TableFactor::Table {
            name, alias, args, ..
        } => {
            if let Some(args) = args
                && !args.args.iter().all(is_table_hint)
            {
                // A table-valued function, not a table.
                let mut sink = Sources::new();
                for arg in &args.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg {
                        sink.extend(sources(ctx, Env::of(scope), e));
                    }
                }
                scope.rels.push(function_relation(alias, sink));
                return;
            }
            let single = match name.0.as_slice() {
                [part] => part.as_ident().map(ident_name),
                _ => None,
            };
            if let Some(cte_name) = single
                && let Some(cols) = ctx.cte(&cte_name)
            {
                let cols = match alias {
                    Some(a) => rename(cols.as_ref().clone(), a),
                    None => cols.as_ref().clone(),
                };
                scope.rels.push(Relation::derived(
                    Some(alias_name(alias).unwrap_or(cte_name)),
                    cols,
                ));
                return;
            }
            match dataset(name, ctx.default_schema()) {
                Some(Dataset::Table(table)) => {
                    ctx.read(Dataset::Table(table.clone()));
                    let columns = ctx.known_columns(&table);
                    let rel = Relation::table(table, alias_name(alias), columns);
                    match alias {
                        Some(a) if !a.columns.is_empty() => {
                            let cols = rename(rel.star(), a);
                            let mut derived = Relation::derived(Some(ident_name(&a.name)), cols);
                            derived.table = rel.table;
                            scope.rels.push(derived);
                        }
                        _ => scope.rels.push(rel),
                    }
                }
                Some(Dataset::Path(path)) => {
                    ctx.read(Dataset::Path(path));
                    scope
                        .rels
                        .push(Relation::derived(alias_name(alias), Vec::new()));
                }
                None => scope
                    .rels
                    .push(Relation::derived(alias_name(alias), Vec::new())),
            }
        }
        TableFactor::Derived {
            lateral,
            subquery,
            alias,
            ..
        } => {
            let cols = if *lateral {
                query(ctx, subquery, Some(&*scope))
            } else {
                query(ctx, subquery, None)
            };
            let cols = match alias {
                Some(a) => rename(cols, a),
                None => cols,
            };
            scope.rels.push(Relation::derived(alias_name(alias), cols));
        }
        TableFactor::TableFunction { expr, alias } => {
            let src = sources(ctx, Env::of(scope), expr);
            scope.rels.push(function_relation(alias, src));
        }
        TableFactor::Function { args, alias, .. } => {
            let mut src = Sources::new();
            for arg in args {
                let arg = match arg {
                    FunctionArg::Named { arg, .. }
                    | FunctionArg::Unnamed(arg)
                    | FunctionArg::ExprNamed { arg, .. } => arg,
                };
                if let FunctionArgExpr::Expr(e) = arg {
                    src.extend(sources(ctx, Env::of(scope), e));
                }
            }
            scope.rels.push(function_relation(alias, src));
        }
        TableFactor::UNNEST {
            alias, array_exprs, ..
        } => {
            let mut src = Sources::new();
            for e in array_exprs {
                src.extend(sources(ctx, Env::of(scope), e));
            }
            let rel = match alias {
                Some(a) if a.columns.is_empty() => {
                    // BigQuery: `UNNEST(arr) AS x` makes `x` a column.
                    let name = ident_name(&a.name);
                    Relation::derived(Some(name.clone()), vec![OutCol::named(name, src)])
                }
                _ => function_relation(alias, src),
            };
            scope.rels.push(rel);
        }
        TableFactor::JsonTable {
            json_expr, alias, ..
        }
        | TableFactor::OpenJsonTable {
            json_expr, alias, ..
        } => {
            let src = sources(ctx, Env::of(scope), json_expr);
            scope.rels.push(function_relation(alias, src));
        }
        TableFactor::XmlTable { alias, .. } => {
            scope.rels.push(function_relation(alias, Sources::new()))
        }
        TableFactor::NestedJoin {
            table_with_joins,
            alias,
        } => {
            let before = scope.rels.len();
            from_item(ctx, table_with_joins, scope);
            if let (Some(a), true) = (alias, scope.rels.len() == before + 1)
                && let Some(last) = scope.rels.last_mut()
            {
                last.alias = Some(ident_name(&a.name));
            }
        }
        TableFactor::Pivot { table, alias, .. }
        | TableFactor::Unpivot { table, alias, .. }
        | TableFactor::MatchRecognize { table, alias, .. } => {
            let before = scope.rels.len();
            relation(ctx, table, scope);
            if let Some(a) = alias
                && scope.rels.len() == before + 1
                && let Some(last) = scope.rels.last_mut()
            {
                last.alias = Some(ident_name(&a.name));
            }
        }
        TableFactor::UnpivotExpr { value_alias, .. } => {
            scope
                .rels
                .push(Relation::derived(Some(ident_name(value_alias)), Vec::new()));
        }
        TableFactor::SemanticView { name, alias, .. } => {
            if let Some(Dataset::Table(table)) = dataset(name, ctx.default_schema()) {
                ctx.read(Dataset::Table(table));
            }
            scope
                .rels
                .push(Relation::derived(alias_name(alias), Vec::new()));
        }
    }
}

/// The relation of a table function: its declared columns, or any column,
/// all fed by the function's arguments.
fn function_relation(alias: &Option<TableAlias>, src: Sources) -> Relation {
    let cols = match alias {
        Some(a) if !a.columns.is_empty() => a
            .columns
            .iter()
            .map(|c| OutCol::named(ident_name(&c.name), src.clone()))
            .collect(),
        _ => vec![OutCol::wildcard(src)],
    };
    Relation::derived(alias_name(alias), cols)
}

/// Hive `LATERAL VIEW explode(x) v AS a, b`: `v.a` and `v.b` come from `x`.
pub(crate) fn lateral_view(ctx: &mut Ctx<'_>, lv: &LateralView, scope: &mut Scope<'_>) {
    let src = sources(ctx, Env::of(scope), &lv.lateral_view);
    let alias = lv
        .lateral_view_name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(ident_name);
    let cols: Vec<OutCol> = if lv.lateral_col_alias.is_empty() {
        vec![OutCol::wildcard(src)]
    } else {
        lv.lateral_col_alias
            .iter()
            .map(|c| OutCol::named(ident_name(c), src.clone()))
            .collect()
    };
    scope.rels.push(Relation::derived(alias, cols));
}

#[cfg(test)]
mod tests {
    use super::super::{Dialect, SqlOptions, extract};

    fn sources(sql: &str, d: Dialect) -> Vec<String> {
        extract(sql, &SqlOptions::new(d)).unwrap().sources
    }

    #[test]
    fn table_hints_are_not_function_calls() {
        assert_eq!(
            sources("select * from db.dbo.t(NOLOCK)", Dialect::MsSql),
            ["db.dbo.t"]
        );
        assert!(
            sources(
                "select * from generate_series(1, 3) g(n)",
                Dialect::Postgres
            )
            .is_empty()
        );
    }

    #[test]
    fn nested_joins_and_derived_tables_read_their_tables() {
        assert_eq!(
            sources(
                "select * from ((a join b on a.x = b.x) join (select * from c) cc on 1 = 1)",
                Dialect::Generic
            ),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn join_conditions_read_their_subqueries() {
        assert_eq!(
            sources(
                "select * from a join b on a.x = (select max(x) from c)",
                Dialect::Generic
            ),
            ["a", "b", "c"]
        );
    }
}
