//! Queries: which tables they read and where each output column comes from.
//!
//! [`query`] returns a query's output columns with their sources and records
//! every table it reads (in CTEs, subqueries, joins, set operations) in the
//! [`Ctx`]. CTEs are pushed for the query's extent, so a CTE named like a
//! real table shadows it and is never reported as a table. `SELECT *`
//! expands to named columns when the relation's columns are known and stays
//! a `table.*` wildcard otherwise. Later select items may refer to earlier
//! aliases (lateral column aliases) when no relation has a column of that
//! name.

use std::rc::Rc;

use sqlparser::ast::{
    CastKind, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, NamedWindowExpr,
    OrderByKind, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, TableAlias,
    Value, Values, WildcardAdditionalOptions, With,
};

use super::context::Ctx;
use super::expr::{Env, reads_only, sources};
use super::name::{Dataset, Name, dataset, ident_name, ident_text};
use super::scope::{ColRef, OutCol, Relation, Scope, Sources};
use super::statement;
use super::tables::{from_item, lateral_view};

/// Analyses a query; `outer` is the enclosing query's scope for correlated
/// subqueries.
pub(crate) fn query(ctx: &mut Ctx<'_>, q: &Query, outer: Option<&Scope<'_>>) -> Vec<OutCol> {
    let pushed = match &q.with {
        Some(with) => {
            define_ctes(ctx, with);
            true
        }
        None => false,
    };
    let cols = set_expr(ctx, &q.body, outer);
    if let Some(order_by) = &q.order_by
        && let OrderByKind::Expressions(exprs) = &order_by.kind
    {
        let scope = Scope::new(outer);
        for e in exprs {
            reads_only(ctx, Env::of(&scope), &e.expr);
        }
    }
    if pushed {
        ctx.pop_ctes();
    }
    cols
}

/// Defines the CTEs of a `WITH` in a new frame (popped by the caller).
fn define_ctes(ctx: &mut Ctx<'_>, with: &With) {
    ctx.push_ctes();
    for cte in &with.cte_tables {
        let name = ident_name(&cte.alias.name);
        if with.recursive {
            ctx.define_cte(name.clone(), Rc::new(Vec::new()));
        }
        let cols = query(ctx, &cte.query, None);
        let cols = rename(cols, &cte.alias);
        ctx.define_cte(name, Rc::new(cols));
    }
}

/// Renames output columns by a `(c1, c2, …)` alias list, by position.
pub(crate) fn rename(mut cols: Vec<OutCol>, alias: &TableAlias) -> Vec<OutCol> {
    if alias.columns.is_empty() || cols.iter().any(|c| c.wildcard) {
        return cols;
    }
    for (col, new) in cols.iter_mut().zip(&alias.columns) {
        col.name = ident_name(&new.name);
    }
    cols
}

fn set_expr(ctx: &mut Ctx<'_>, body: &SetExpr, outer: Option<&Scope<'_>>) -> Vec<OutCol> {
    match body {
        SetExpr::Select(s) => select(ctx, s, outer),
        SetExpr::Query(q) => query(ctx, q, outer),
        SetExpr::SetOperation { left, right, .. } => {
            let l = set_expr(ctx, left, outer);
            let r = set_expr(ctx, right, outer);
            union(l, r)
        }
        SetExpr::Values(v) => values(ctx, v, outer),
        SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
            statement::statement(ctx, s);
            Vec::new()
        }
        SetExpr::Table(t) => {
            let Some(table) = &t.table_name else {
                return Vec::new();
            };
            let text = match &t.schema_name {
                Some(s) => format!("{}.{}", ident_text(s), ident_text(table)),
                None => ident_text(table),
            };
            let name = Name::new(text);
            ctx.read(Dataset::Table(name.clone()));
            let columns = ctx.known_columns(&name);
            Relation::table(name, None, columns).star()
        }
    }
}

/// Combines the outputs of a set operation by position.
fn union(mut left: Vec<OutCol>, right: Vec<OutCol>) -> Vec<OutCol> {
    if left.len() == right.len() {
        for (l, r) in left.iter_mut().zip(right) {
            l.sources.extend(r.sources);
            l.wildcard |= r.wildcard;
        }
        return left;
    }
    let shared = left.len().min(right.len());
    let mut right = right.into_iter();
    for l in left.iter_mut().take(shared) {
        if let Some(r) = right.next() {
            l.sources.extend(r.sources);
        }
    }
    left.extend(right);
    left
}

fn values(ctx: &mut Ctx<'_>, v: &Values, outer: Option<&Scope<'_>>) -> Vec<OutCol> {
    let scope = Scope::new(outer);
    let mut cols: Vec<OutCol> = Vec::new();
    for row in &v.rows {
        for (i, e) in row.iter().enumerate() {
            let s = sources(ctx, Env::of(&scope), e);
            match cols.get_mut(i) {
                Some(col) => col.sources.extend(s),
                None => cols.push(OutCol::named(Name::new(format!("column{}", i + 1)), s)),
            }
        }
    }
    cols
}

fn select(ctx: &mut Ctx<'_>, s: &Select, outer: Option<&Scope<'_>>) -> Vec<OutCol> {
    let mut scope = Scope::new(outer);
    for item in &s.from {
        from_item(ctx, item, &mut scope);
    }
    for lv in &s.lateral_views {
        lateral_view(ctx, lv, &mut scope);
    }
    let windows: Vec<(Name, &sqlparser::ast::WindowSpec)> = s
        .named_window
        .iter()
        .filter_map(|w| match &w.1 {
            NamedWindowExpr::WindowSpec(spec) => Some((ident_name(&w.0), spec)),
            NamedWindowExpr::NamedWindow(_) => None,
        })
        .collect();

    let mut out: Vec<OutCol> = Vec::new();
    let mut aliases: Vec<(Name, Sources)> = Vec::new();
    for item in &s.projection {
        let env = Env {
            scope: &scope,
            windows: &windows,
            aliases: &aliases,
        };
        match item {
            SelectItem::UnnamedExpr(e) => {
                known_lineage_function(ctx, e);
                let src = sources(ctx, env, e);
                out.push(OutCol::named(output_name(e), src));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let src = sources(ctx, env, expr);
                let name = ident_name(alias);
                aliases.push((name.clone(), src.clone()));
                out.push(OutCol::named(name, src));
            }
            SelectItem::ExprWithAliases {
                expr,
                aliases: names,
            } => {
                let src = sources(ctx, env, expr);
                for a in names {
                    out.push(OutCol::named(ident_name(a), src.clone()));
                }
            }
            SelectItem::Wildcard(opts) => {
                if scope.rels.is_empty() {
                    continue;
                }
                let mut cols = Vec::new();
                for r in &scope.rels {
                    cols.extend(r.star());
                }
                out.extend(wildcard_options(ctx, env, cols, opts));
            }
            SelectItem::QualifiedWildcard(kind, opts) => match kind {
                SelectItemQualifiedWildcardKind::ObjectName(name) => {
                    let q = Name::new(
                        name.0
                            .iter()
                            .filter_map(|p| p.as_ident())
                            .map(ident_text)
                            .collect::<Vec<_>>()
                            .join("."),
                    );
                    match scope.qualified(&q) {
                        Some(r) => {
                            let cols = r.star();
                            out.extend(wildcard_options(ctx, env, cols, opts));
                        }
                        None => ctx.note(format!(
                            "{}.* does not name a relation of the query",
                            q.text()
                        )),
                    }
                }
                SelectItemQualifiedWildcardKind::Expr(e) => {
                    let src = sources(ctx, env, e);
                    out.push(OutCol::wildcard(src));
                }
            },
        }
    }

    if let Some(into) = &s.into {
        for target in &into.targets {
            if let Some(name) = expr_table_name(target, ctx.default_schema()) {
                ctx.select_into.push(name);
            }
        }
    }

    let env = Env {
        scope: &scope,
        windows: &windows,
        aliases: &[],
    };
    let filters = s
        .selection
        .iter()
        .chain(&s.having)
        .chain(&s.qualify)
        .chain(&s.prewhere);
    for e in filters {
        reads_only(ctx, env, e);
    }
    if let GroupByExpr::Expressions(exprs, _) = &s.group_by {
        for e in exprs {
            reads_only(ctx, env, e);
        }
    }
    out
}

/// Applies `* EXCEPT (…)`, `EXCLUDE`, `REPLACE (… AS c)` and `RENAME`.
fn wildcard_options(
    ctx: &mut Ctx<'_>,
    env: Env<'_>,
    mut cols: Vec<OutCol>,
    opts: &WildcardAdditionalOptions,
) -> Vec<OutCol> {
    let mut removed: Vec<Name> = Vec::new();
    if let Some(except) = &opts.opt_except {
        removed.push(ident_name(&except.first_element));
        removed.extend(except.additional_elements.iter().map(ident_name));
    }
    if let Some(exclude) = &opts.opt_exclude {
        let names = match exclude {
            sqlparser::ast::ExcludeSelectItem::Single(n) => vec![n],
            sqlparser::ast::ExcludeSelectItem::Multiple(ns) => ns.iter().collect(),
        };
        for n in names {
            if let Some(last) = n.0.last().and_then(|p| p.as_ident()) {
                removed.push(ident_name(last));
            }
        }
    }
    if !removed.is_empty() {
        if cols.iter().any(|c| c.wildcard) {
            ctx.note("* EXCEPT/EXCLUDE over a table whose columns are unknown; the exclusion is not applied");
        }
        cols.retain(|c| c.wildcard || !removed.contains(&c.name));
    }
    if let Some(replace) = &opts.opt_replace {
        for item in &replace.items {
            let name = ident_name(&item.column_name);
            let src = sources(ctx, env, &item.expr);
            match cols.iter_mut().find(|c| !c.wildcard && c.name == name) {
                Some(col) => col.sources = src,
                None => cols.push(OutCol::named(name, src)),
            }
        }
    }
    if let Some(rename) = &opts.opt_rename {
        let pairs = match rename {
            sqlparser::ast::RenameSelectItem::Single(one) => vec![one],
            sqlparser::ast::RenameSelectItem::Multiple(many) => many.iter().collect(),
        };
        for pair in pairs {
            let from = ident_name(&pair.ident);
            if let Some(col) = cols.iter_mut().find(|c| !c.wildcard && c.name == from) {
                col.name = ident_name(&pair.alias);
            }
        }
    }
    cols
}

/// The name of an unaliased output column: the column's own name, or the
/// expression's text.
pub(crate) fn output_name(e: &Expr) -> Name {
    match e {
        Expr::Identifier(id) => ident_name(id),
        Expr::CompoundIdentifier(ids) if !ids.is_empty() => ident_name(&ids[ids.len() - 1]),
        Expr::Cast {
            kind: CastKind::DoubleColon,
            expr,
            ..
        } if matches!(**expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => {
            output_name(expr)
        }
        _ => Name::new(e.to_string()),
    }
}

/// `SELECT … INTO name`: the target, when it is a table name.
fn expr_table_name(e: &Expr, default_schema: Option<&str>) -> Option<Name> {
    let ids = match e {
        Expr::Identifier(id) => vec![id.clone()],
        Expr::CompoundIdentifier(ids) => ids.clone(),
        _ => return None,
    };
    if ids.iter().any(|i| i.value.starts_with('@')) {
        return None;
    }
    match dataset(&sqlparser::ast::ObjectName::from(ids), default_schema)? {
        Dataset::Table(n) => Some(n),
        Dataset::Path(_) => None,
    }
}

/// Functions whose call moves data between tables named by their
/// arguments: Vertica's `swap_partitions_between_tables(staging, …, target)`.
fn known_lineage_function(ctx: &mut Ctx<'_>, e: &Expr) {
    let Expr::Function(f) = e else { return };
    if !f
        .name
        .to_string()
        .eq_ignore_ascii_case("swap_partitions_between_tables")
    {
        return;
    }
    let FunctionArguments::List(list) = &f.args else {
        return;
    };
    let text = |arg: Option<&FunctionArg>| -> Option<Name> {
        match arg? {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
                Value::SingleQuotedString(s) => Some(Name::new(s.clone())),
                _ => None,
            },
            _ => None,
        }
    };
    if let (Some(staging), Some(target)) = (text(list.args.first()), text(list.args.get(3))) {
        ctx.read(Dataset::Table(staging));
        ctx.write(Dataset::Table(target));
    }
}

/// The table a column reference `q.c` names outside a query (an `UPDATE`
/// target's own column).
pub(crate) fn column_ref(table: &Name, col: &Name) -> ColRef {
    ColRef::new(Some(table.clone()), col.clone())
}

#[cfg(test)]
mod tests {
    use super::super::{Dialect, SqlOptions, extract};
    use super::*;
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::Parser;

    fn name_of(sql: &str) -> String {
        let e = Parser::new(&GenericDialect)
            .try_with_sql(sql)
            .unwrap()
            .parse_expr()
            .unwrap();
        output_name(&e).text().to_string()
    }

    #[test]
    fn unaliased_outputs_are_named_like_sqllineage_does() {
        assert_eq!(name_of("t.Col"), "col");
        assert_eq!(name_of("col::timestamp"), "col");
        assert_eq!(name_of("max(col)"), "max(col)");
        assert_eq!(name_of("(a + b)"), "(a + b)");
    }

    #[test]
    fn set_operations_merge_positionally() {
        let a = |n: &str| OutCol::named(Name::new(n), Sources::new());
        assert_eq!(union(vec![a("x"), a("y")], vec![a("p"), a("q")]).len(), 2);
        assert_eq!(union(vec![a("x")], vec![a("p"), a("q")]).len(), 2);
    }

    #[test]
    fn ctes_see_earlier_ctes() {
        let l = extract(
            "WITH a AS (SELECT x FROM t), b AS (SELECT x FROM a) SELECT x FROM b; SELECT 1 FROM s.u",
            &SqlOptions::new(Dialect::Postgres),
        )
        .unwrap();
        assert_eq!(l.sources, ["t", "s.u"]);
    }
}
