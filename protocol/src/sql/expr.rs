//! The source columns of an expression.
//!
//! Every column an expression mentions feeds its value: function arguments,
//! `CASE` conditions as well as results, window `PARTITION BY` and
//! `ORDER BY`, and the outputs of scalar subqueries (`(SELECT max(x) FROM
//! t)` feeds from `t.x`). Subqueries are analysed with the current scope as
//! their parent, so correlated references resolve, and the tables they read
//! are recorded. Literals, variables (`@x`, `:x`) and niladic keywords
//! (`current_timestamp`) feed nothing.

use sqlparser::ast::{
    AccessExpr, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, Ident, InTarget, Subscript, WindowFrameBound, WindowSpec, WindowType,
};

use super::context::Ctx;
use super::name::{Name, ident_name, idents_name};
use super::query::query;
use super::scope::{ColRef, Lookup, OutCol, Relation, Scope, Sources};

/// Where an expression's names are looked up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Env<'e> {
    pub(crate) scope: &'e Scope<'e>,
    /// Named windows of the `SELECT` (`WINDOW w AS (…)`).
    pub(crate) windows: &'e [(Name, &'e WindowSpec)],
    /// Earlier select-list aliases, for lateral column references.
    pub(crate) aliases: &'e [(Name, Sources)],
}

impl<'e> Env<'e> {
    pub(crate) fn of(scope: &'e Scope<'e>) -> Self {
        Env {
            scope,
            windows: &[],
            aliases: &[],
        }
    }
}

/// Keywords that parse as identifiers but are values.
const NILADIC: &[&str] = &[
    "current_timestamp",
    "current_date",
    "current_time",
    "current_user",
    "current_role",
    "current_schema",
    "current_catalog",
    "session_user",
    "system_user",
    "user",
    "sysdate",
    "systimestamp",
    "localtimestamp",
    "localtime",
    "null",
    "true",
    "false",
];

/// The source columns of `e`.
pub(crate) fn sources(ctx: &mut Ctx<'_>, env: Env<'_>, e: &Expr) -> Sources {
    let mut out = Sources::new();
    walk(ctx, env, e, &mut out);
    out
}

/// Walks `e` only for the tables its subqueries read.
pub(crate) fn reads_only(ctx: &mut Ctx<'_>, env: Env<'_>, e: &Expr) {
    ctx.quietly(|ctx| {
        let mut sink = Sources::new();
        walk(ctx, env, e, &mut sink);
    });
}

fn walk_all<'x>(
    ctx: &mut Ctx<'_>,
    env: Env<'_>,
    es: impl IntoIterator<Item = &'x Expr>,
    out: &mut Sources,
) {
    for e in es {
        walk(ctx, env, e, out);
    }
}

fn walk(ctx: &mut Ctx<'_>, env: Env<'_>, e: &Expr, out: &mut Sources) {
    match e {
        Expr::Identifier(id) => out.extend(column(ctx, env, id)),
        Expr::CompoundIdentifier(ids) => out.extend(compound(ctx, env, ids)),
        Expr::CompoundFieldAccess { root, access_chain } => {
            walk(ctx, env, root, out);
            for a in access_chain {
                match a {
                    AccessExpr::Dot(_) => {}
                    AccessExpr::Subscript(s) => subscript(ctx, env, s, out),
                }
            }
        }
        Expr::JsonAccess { value, .. } => walk(ctx, env, value, out),
        Expr::IsFalse(x)
        | Expr::IsNotFalse(x)
        | Expr::IsTrue(x)
        | Expr::IsNotTrue(x)
        | Expr::IsNull(x)
        | Expr::IsNotNull(x)
        | Expr::IsUnknown(x)
        | Expr::IsNotUnknown(x)
        | Expr::Nested(x)
        | Expr::OuterJoin(x)
        | Expr::Prior(x) => walk(ctx, env, x, out),
        Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
            walk(ctx, env, a, out);
            walk(ctx, env, b, out);
        }
        Expr::IsJson { expr, .. } | Expr::IsNormalized { expr, .. } => walk(ctx, env, expr, out),
        Expr::In { expr, target, .. } => {
            walk(ctx, env, expr, out);
            match target {
                InTarget::List(list) => walk_all(ctx, env, list, out),
                InTarget::Subquery(q) => subquery(ctx, env, q, out),
                InTarget::Unnest(x) => walk(ctx, env, x, out),
                InTarget::Table { .. } => {}
            }
        }
        Expr::Between {
            expr, low, high, ..
        } => walk_all(ctx, env, [&**expr, &**low, &**high], out),
        Expr::BinaryOp { left, right, .. }
        | Expr::AnyOp { left, right, .. }
        | Expr::AllOp { left, right, .. } => {
            walk(ctx, env, left, out);
            walk(ctx, env, right, out);
        }
        Expr::Like {
            expr,
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            expr,
            pattern,
            escape_char,
            ..
        }
        | Expr::SimilarTo {
            expr,
            pattern,
            escape_char,
            ..
        } => {
            walk(ctx, env, expr, out);
            walk(ctx, env, pattern, out);
            if let Some(e) = escape_char {
                walk(ctx, env, e, out);
            }
        }
        Expr::RLike { expr, pattern, .. } => {
            walk(ctx, env, expr, out);
            walk(ctx, env, pattern, out);
        }
        Expr::UnaryOp { expr, .. }
        | Expr::Cast { expr, .. }
        | Expr::Extract { expr, .. }
        | Expr::Ceil { expr, .. }
        | Expr::Floor { expr, .. }
        | Expr::Collate { expr, .. }
        | Expr::Named { expr, .. } => walk(ctx, env, expr, out),
        Expr::Convert { expr, styles, .. } => {
            walk(ctx, env, expr, out);
            walk_all(ctx, env, styles, out);
        }
        Expr::AtTimeZone {
            timestamp,
            time_zone,
        } => {
            walk(ctx, env, timestamp, out);
            walk(ctx, env, time_zone, out);
        }
        Expr::Position { expr, r#in } => {
            walk(ctx, env, expr, out);
            walk(ctx, env, r#in, out);
        }
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            walk(ctx, env, expr, out);
            walk_all(
                ctx,
                env,
                substring_from.iter().chain(substring_for).map(|b| &**b),
                out,
            );
        }
        Expr::Trim {
            expr,
            trim_what,
            trim_characters,
            ..
        } => {
            walk(ctx, env, expr, out);
            walk_all(ctx, env, trim_what.iter().map(|b| &**b), out);
            walk_all(ctx, env, trim_characters.iter().flatten(), out);
        }
        Expr::Overlay {
            expr,
            overlay_what,
            overlay_from,
            overlay_for,
        } => {
            walk_all(ctx, env, [&**expr, &**overlay_what, &**overlay_from], out);
            walk_all(ctx, env, overlay_for.iter().map(|b| &**b), out);
        }
        Expr::Value(_) | Expr::TypedString(_) | Expr::Wildcard(_) => {}
        Expr::QualifiedWildcard(name, _) => {
            let q = Name::new(name.to_string().to_lowercase());
            if let Some(r) = env.scope.qualified(&q) {
                out.extend(r.all_sources());
            }
        }
        Expr::Prefixed { value, .. } => walk(ctx, env, value, out),
        Expr::Function(f) => function(ctx, env, f, out),
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            walk_all(ctx, env, operand.iter().map(|b| &**b), out);
            for c in conditions {
                walk(ctx, env, &c.condition, out);
                walk(ctx, env, &c.result, out);
            }
            walk_all(ctx, env, else_result.iter().map(|b| &**b), out);
        }
        Expr::Exists { subquery: q, .. } | Expr::Subquery(q) => subquery(ctx, env, q, out),
        Expr::GroupingSets(sets) | Expr::Cube(sets) | Expr::Rollup(sets) => {
            walk_all(ctx, env, sets.iter().flatten(), out)
        }
        Expr::Tuple(items) => walk_all(ctx, env, items, out),
        Expr::Struct { values, .. } => walk_all(ctx, env, values, out),
        Expr::Dictionary(fields) => walk_all(ctx, env, fields.iter().map(|f| &*f.value), out),
        Expr::Map(map) => {
            for entry in &map.entries {
                walk(ctx, env, &entry.key, out);
                walk(ctx, env, &entry.value, out);
            }
        }
        Expr::Array(array) => walk_all(ctx, env, &array.elem, out),
        Expr::Interval(interval) => walk(ctx, env, &interval.value, out),
        Expr::MatchAgainst { columns, .. } => {
            for c in columns {
                let ids: Vec<Ident> = c.0.iter().filter_map(|p| p.as_ident().cloned()).collect();
                out.extend(compound_or_column(ctx, env, &ids));
            }
        }
        Expr::Lambda(lambda) => {
            // Parameters shadow columns inside the body.
            let params: Vec<OutCol> = lambda
                .params
                .iter()
                .map(|p| OutCol::named(ident_name(&p.name), Sources::new()))
                .collect();
            let inner = Scope {
                rels: vec![Relation::derived(None, params)],
                parent: Some(env.scope),
            };
            let inner_env = Env {
                scope: &inner,
                windows: env.windows,
                aliases: env.aliases,
            };
            walk(ctx, inner_env, &lambda.body, out);
        }
        Expr::MemberOf(m) => {
            walk(ctx, env, &m.value, out);
            walk(ctx, env, &m.array, out);
        }
    }
}

fn subscript(ctx: &mut Ctx<'_>, env: Env<'_>, s: &Subscript, out: &mut Sources) {
    match s {
        Subscript::Index { index } => walk(ctx, env, index, out),
        Subscript::Slice {
            lower_bound,
            upper_bound,
            stride,
        } => walk_all(
            ctx,
            env,
            lower_bound.iter().chain(upper_bound).chain(stride),
            out,
        ),
    }
}

fn subquery(ctx: &mut Ctx<'_>, env: Env<'_>, q: &sqlparser::ast::Query, out: &mut Sources) {
    for col in query(ctx, q, Some(env.scope)) {
        out.extend(col.sources);
    }
}

fn function(ctx: &mut Ctx<'_>, env: Env<'_>, f: &Function, out: &mut Sources) {
    for args in [&f.parameters, &f.args] {
        match args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(q) => subquery(ctx, env, q, out),
            FunctionArguments::List(list) => {
                for arg in &list.args {
                    let arg = match arg {
                        FunctionArg::Named { arg, .. } | FunctionArg::Unnamed(arg) => arg,
                        FunctionArg::ExprNamed { name, arg, .. } => {
                            walk(ctx, env, name, out);
                            arg
                        }
                    };
                    match arg {
                        FunctionArgExpr::Expr(e) => walk(ctx, env, e, out),
                        FunctionArgExpr::Wildcard | FunctionArgExpr::WildcardWithOptions(_) => {
                            for r in &env.scope.rels {
                                out.extend(r.all_sources());
                            }
                        }
                        FunctionArgExpr::QualifiedWildcard(name) => {
                            let q = Name::new(name.to_string().to_lowercase());
                            if let Some(r) = env.scope.qualified(&q) {
                                out.extend(r.all_sources());
                            }
                        }
                    }
                }
                for clause in &list.clauses {
                    match clause {
                        FunctionArgumentClause::Where(e) | FunctionArgumentClause::Limit(e) => {
                            walk(ctx, env, e, out)
                        }
                        FunctionArgumentClause::OrderBy(obs) => {
                            walk_all(ctx, env, obs.iter().map(|o| &o.expr), out)
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    walk_all(ctx, env, f.within_group.iter().map(|o| &o.expr), out);
    if let Some(filter) = &f.filter {
        walk(ctx, env, filter, out);
    }
    match &f.over {
        Some(WindowType::WindowSpec(spec)) => window(ctx, env, spec, out),
        Some(WindowType::NamedWindow(name)) => {
            let name = ident_name(name);
            if let Some((_, spec)) = env.windows.iter().find(|(n, _)| *n == name) {
                window(ctx, env, spec, out);
            }
        }
        None => {}
    }
}

fn window(ctx: &mut Ctx<'_>, env: Env<'_>, spec: &WindowSpec, out: &mut Sources) {
    if let Some(name) = &spec.window_name {
        let name = ident_name(name);
        if let Some((_, base)) = env.windows.iter().find(|(n, _)| *n == name) {
            window(ctx, env, base, out);
        }
    }
    walk_all(ctx, env, &spec.partition_by, out);
    walk_all(ctx, env, spec.order_by.iter().map(|o| &o.expr), out);
    if let Some(frame) = &spec.window_frame {
        for bound in std::iter::once(&frame.start_bound).chain(&frame.end_bound) {
            if let WindowFrameBound::Preceding(Some(e)) | WindowFrameBound::Following(Some(e)) =
                bound
            {
                walk(ctx, env, e, out);
            }
        }
    }
}

/// An unqualified column.
fn column(ctx: &mut Ctx<'_>, env: Env<'_>, id: &Ident) -> Sources {
    if id.quote_style == Some('\'') || id.value.starts_with(['@', ':', '$', '?']) {
        return Sources::new();
    }
    let col = ident_name(id);
    let niladic = id.quote_style.is_none() && NILADIC.contains(&col.key());
    match env.scope.local(&col) {
        Lookup::Found(s) if !niladic => return s,
        Lookup::Found(_) | Lookup::Missing => {}
        Lookup::Ambiguous(candidates) => {
            if niladic {
                return Sources::new();
            }
            ctx.note(format!(
                "column {} could come from any of {}; recorded without a table (qualify it or give a catalog)",
                col.text(),
                candidates.join(", ")
            ));
            return std::iter::once(ColRef::new(None, col)).collect();
        }
    }
    if niladic {
        return Sources::new();
    }
    if let Some((_, s)) = env.aliases.iter().rev().find(|(a, _)| *a == col) {
        return s.clone();
    }
    let mut parent = env.scope.parent;
    while let Some(p) = parent {
        match p.local(&col) {
            Lookup::Found(s) => return s,
            Lookup::Ambiguous(_) => return std::iter::once(ColRef::new(None, col)).collect(),
            Lookup::Missing => parent = p.parent,
        }
    }
    if env.scope.rels.is_empty() {
        // `SELECT x` without FROM: a variable or parameter, not a column.
        return Sources::new();
    }
    ctx.note(format!(
        "column {} is not among the known columns of its FROM clause; recorded without a table",
        col.text()
    ));
    std::iter::once(ColRef::new(None, col)).collect()
}

/// A qualified column `q.c` (or `schema.table.c`, or `struct_col.field`).
fn compound(ctx: &mut Ctx<'_>, env: Env<'_>, ids: &[Ident]) -> Sources {
    compound_or_column(ctx, env, ids)
}

fn compound_or_column(ctx: &mut Ctx<'_>, env: Env<'_>, ids: &[Ident]) -> Sources {
    match ids {
        [] => Sources::new(),
        [one] => column(ctx, env, one),
        [qualifier @ .., last] => {
            let q = idents_name(qualifier);
            let col = ident_name(last);
            if let Some(r) = env.scope.qualified(&q) {
                return r.resolve(&col);
            }
            // Not a relation: a struct column's field (`payload.id`), or a
            // longer qualifier whose head is the relation (`t.payload.id`).
            if let Some(r) = env.scope.qualified(&ident_name(&ids[0])) {
                return r.resolve(&ident_name(&ids[1]));
            }
            if let Lookup::Found(s) = env.scope.local(&ident_name(&ids[0])) {
                return s;
            }
            ctx.note(format!(
                "{} does not name a relation of the query; column {} skipped",
                q.text(),
                col.text()
            ));
            Sources::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::Session;
    use super::super::options::SqlOptions;
    use super::*;
    use sqlparser::dialect::DatabricksDialect;
    use sqlparser::parser::Parser;

    fn expr_sources(sql: &str, scope: &Scope<'_>) -> Vec<String> {
        let e = Parser::new(&DatabricksDialect)
            .try_with_sql(sql)
            .unwrap()
            .parse_expr()
            .unwrap();
        let opts = SqlOptions::default();
        let session = Session::default();
        let mut ctx = Ctx::new(&opts, &session);
        sources(&mut ctx, Env::of(scope), &e)
            .iter()
            .map(ColRef::text)
            .collect()
    }

    #[test]
    fn collects_columns_from_every_part() {
        let scope = Scope {
            rels: vec![Relation::table(Name::new("t"), Some(Name::new("x")), None)],
            parent: None,
        };
        assert_eq!(
            expr_sources("CASE WHEN x.a > 0 THEN b ELSE cast(c AS int) END", &scope),
            ["t.a", "t.b", "t.c"]
        );
        assert_eq!(
            expr_sources("row_number() OVER (PARTITION BY a ORDER BY b)", &scope),
            ["t.a", "t.b"]
        );
        assert_eq!(expr_sources("count(*)", &scope), ["t.*"]);
        assert!(expr_sources("current_timestamp + @v + 1", &scope).is_empty());
        assert_eq!(
            expr_sources("transform(arr, e -> e + k)", &scope),
            ["t.arr", "t.k"]
        );
    }

    #[test]
    fn scalar_subqueries_feed_their_outputs() {
        let scope = Scope {
            rels: vec![Relation::table(Name::new("t"), None, None)],
            parent: None,
        };
        assert_eq!(
            expr_sources("a + (SELECT max(b) FROM u)", &scope),
            ["t.a", "u.b"]
        );
        // Correlated: `a` is not in u's scope... but u's columns are unknown,
        // so the inner table takes it, as a database would.
        assert_eq!(expr_sources("(SELECT a + 1)", &scope), ["t.a"]);
    }
}
