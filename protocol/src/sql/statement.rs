//! Statements: what each kind reads, writes and maps column to column.
//!
//! - `INSERT [OVERWRITE] … SELECT`, `CREATE TABLE … AS`, `CREATE VIEW`,
//!   `SELECT … INTO`: the query's outputs map onto the target's columns —
//!   by the explicit column list, else the catalog's columns by position,
//!   else by the query's own output names (and a note says so).
//! - `MERGE`, `UPDATE … FROM`, `DELETE … USING`: see [`super::dml`].
//! - `COPY`, `UNLOAD`, `LOAD DATA`, `INSERT OVERWRITE DIRECTORY`: a table on
//!   one side, a path on the other.
//! - `DROP`, `ALTER … RENAME`, `CREATE` change the script's state (see
//!   [`super::script`]) but `DROP`/`TRUNCATE` produce no lineage edge.
//! - Procedures, `IF`/`WHILE` blocks: their inner statements, as one.

use sqlparser::ast::{
    AlterTableOperation, AssignmentTarget, ConditionalStatements, CopySource, CopyTarget,
    CreateProcedureBody, CreateTable, CreateTableLikeKind, CreateView, Expr, Insert, ObjectName,
    ObjectType, Query, RenameTableNameKind, SetExpr, Statement, TableObject,
};

use super::context::{Ctx, Effect};
use super::dml;
use super::expr::{Env, sources};
use super::name::{Dataset, Name, dataset, ident_name, table_name};
use super::parse::parse_text;
use super::query::{column_ref, query};
use super::salvage::Salvaged;
use super::scope::{OutCol, Scope};

/// Analyses one statement into `ctx`.
pub(crate) fn statement(ctx: &mut Ctx<'_>, st: &Statement) {
    match st {
        Statement::Query(q) => select_statement(ctx, q),
        Statement::Insert(ins) => insert(ctx, ins),
        Statement::CreateTable(ct) => create_table(ctx, ct),
        Statement::CreateView(cv) => create_view(ctx, cv),
        Statement::Merge(m) => dml::merge(ctx, m),
        Statement::Update(u) => dml::update(ctx, u),
        Statement::Delete(d) => dml::delete(ctx, d),
        Statement::Copy {
            source, to, target, ..
        } => {
            let path = match target {
                CopyTarget::File { filename } => Some(Dataset::Path(filename.clone())),
                _ => None,
            };
            match source {
                CopySource::Table { table_name, .. } => {
                    let table = dataset(table_name, ctx.default_schema());
                    let (from, into) = if *to { (table, path) } else { (path, table) };
                    if let Some(d) = from {
                        ctx.read(d);
                    }
                    if let Some(d) = into {
                        ctx.write(d);
                    }
                }
                CopySource::Query(q) => {
                    query(ctx, q, None);
                    if let Some(p) = path {
                        ctx.write(p);
                    }
                }
            }
        }
        Statement::CopyIntoSnowflake {
            into,
            from_obj,
            from_query,
            ..
        } => {
            if let Some(q) = from_query {
                query(ctx, q, None);
            }
            if let Some(from) = from_obj
                .as_ref()
                .and_then(|o| dataset(o, ctx.default_schema()))
            {
                ctx.read(from);
            }
            if let Some(into) = dataset(into, ctx.default_schema()) {
                ctx.write(into);
            }
        }
        Statement::Unload {
            query: q,
            query_text,
            to,
            ..
        } => {
            if let Some(q) = q {
                query(ctx, q, None);
            }
            if let Some(text) = query_text {
                match parse_text(text, ctx.opts.dialect, true) {
                    Ok(stmts) => stmts.iter().for_each(|s| statement(ctx, s)),
                    Err(e) => ctx.note(format!("UNLOAD: its query text does not parse ({e})")),
                }
            }
            ctx.write(Dataset::Path(to.value.clone()));
        }
        Statement::LoadData {
            inpath, table_name, ..
        } => {
            ctx.read(Dataset::Path(inpath.clone()));
            if let Some(t) = dataset(table_name, ctx.default_schema()) {
                ctx.write(t);
            }
        }
        Statement::Directory { path, source, .. } => {
            query(ctx, source, None);
            ctx.write(Dataset::Path(path.clone()));
        }
        Statement::Drop {
            object_type, names, ..
        } => {
            if matches!(
                object_type,
                ObjectType::Table
                    | ObjectType::View
                    | ObjectType::MaterializedView
                    | ObjectType::ForeignTable
            ) {
                for n in names {
                    if let Some(t) = table_name(n, ctx.default_schema()) {
                        ctx.effects.push(Effect::Drop(t));
                    }
                }
            }
        }
        Statement::AlterTable(at) => {
            let Some(this) = table_name(&at.name, ctx.default_schema()) else {
                return;
            };
            for op in &at.operations {
                match op {
                    AlterTableOperation::RenameTable {
                        table_name: RenameTableNameKind::As(to) | RenameTableNameKind::To(to),
                    } => {
                        if let Some(to) = table_name(to, ctx.default_schema()) {
                            ctx.effects.push(Effect::Rename {
                                from: this.clone(),
                                to,
                            });
                        }
                    }
                    AlterTableOperation::SwapWith { table_name: other } => {
                        if let Some(other) = table_name(other, ctx.default_schema()) {
                            ctx.read(Dataset::Table(other));
                            ctx.write(Dataset::Table(this.clone()));
                        }
                    }
                    _ => {}
                }
            }
        }
        Statement::RenameTable(renames) => {
            for r in renames {
                let from = table_name(&r.old_name, ctx.default_schema());
                let to = table_name(&r.new_name, ctx.default_schema());
                if let (Some(from), Some(to)) = (from, to) {
                    ctx.effects.push(Effect::Rename { from, to });
                }
            }
        }
        Statement::CreateProcedure { body, .. } => match body {
            CreateProcedureBody::As(stmts) => conditional(ctx, stmts),
            CreateProcedureBody::BeginAtomic(b) => {
                b.statements.iter().for_each(|s| statement(ctx, s))
            }
        },
        Statement::If(s) => {
            let blocks = std::iter::once(&s.if_block)
                .chain(&s.elseif_blocks)
                .chain(&s.else_block);
            for b in blocks {
                conditional(ctx, &b.conditional_statements);
            }
        }
        Statement::While(s) => conditional(ctx, &s.while_block.conditional_statements),
        Statement::Case(s) => {
            for b in s.when_blocks.iter().chain(&s.else_block) {
                conditional(ctx, &b.conditional_statements);
            }
        }
        _ => {}
    }
}

fn conditional(ctx: &mut Ctx<'_>, stmts: &ConditionalStatements) {
    let list = match stmts {
        ConditionalStatements::Sequence { statements } => statements,
        ConditionalStatements::BeginEnd(b) => &b.statements,
    };
    for s in list {
        statement(ctx, s);
    }
}

/// Analyses what the salvage rules recovered from an unparseable statement.
pub(crate) fn salvaged(ctx: &mut Ctx<'_>, s: &Salvaged) {
    match s {
        Salvaged::CreateTable {
            name,
            query: q,
            note,
        } => {
            ctx.note(note.clone());
            let Some(table) = table_name(name, ctx.default_schema()) else {
                return;
            };
            ctx.write(Dataset::Table(table.clone()));
            let columns = q.as_ref().map(|q| {
                let outs = query(ctx, q, None);
                ctx.map_columns(&table, &outs, None, "CREATE TABLE");
                outs
            });
            ctx.effects.push(Effect::Create {
                columns: columns.and_then(|c| known_names(&c)),
                table,
            });
        }
        Salvaged::Exchange { target, source } => {
            if let Some(s) = dataset(source, ctx.default_schema()) {
                ctx.read(s);
            }
            if let Some(t) = dataset(target, ctx.default_schema()) {
                ctx.write(t);
            }
        }
    }
}

/// The names of query outputs, when none is an unexpanded `*`.
pub(crate) fn known_names(outs: &[OutCol]) -> Option<Vec<Name>> {
    if outs.iter().any(|c| c.wildcard) {
        return None;
    }
    Some(outs.iter().map(|c| c.name.clone()).collect())
}

/// The last part of each column name of a column list.
pub(crate) fn column_names(cols: &[ObjectName]) -> Vec<Name> {
    cols.iter()
        .filter_map(|c| c.0.last().and_then(|p| p.as_ident()).map(ident_name))
        .collect()
}

fn select_statement(ctx: &mut Ctx<'_>, q: &Query) {
    let outs = query(ctx, q, None);
    for target in std::mem::take(&mut ctx.select_into) {
        ctx.write(Dataset::Table(target.clone()));
        ctx.map_columns(&target, &outs, None, "SELECT INTO");
        ctx.effects.push(Effect::Create {
            table: target,
            columns: known_names(&outs),
        });
    }
}

fn insert(ctx: &mut Ctx<'_>, ins: &Insert) {
    let target = match &ins.table {
        TableObject::TableName(n) => dataset(n, ctx.default_schema()),
        TableObject::TableQuery(q) => {
            query(ctx, q, None);
            None
        }
        TableObject::TableFunction(_) => None,
    };
    let outputs = ins
        .source
        .as_ref()
        .map(|q| (query(ctx, q, None), is_values(q)));
    for clause in ins
        .multi_table_into_clauses
        .iter()
        .chain(
            ins.multi_table_when_clauses
                .iter()
                .flat_map(|w| &w.into_clauses),
        )
        .chain(ins.multi_table_else_clause.iter().flatten())
    {
        if let Some(t) = dataset(&clause.table_name, ctx.default_schema()) {
            ctx.write(t);
        }
    }
    let table = match target {
        Some(Dataset::Table(t)) => t,
        Some(path @ Dataset::Path(_)) => {
            ctx.write(path);
            return;
        }
        None => return,
    };
    ctx.write(Dataset::Table(table.clone()));
    if let Some((outs, from_values)) = outputs {
        let mut explicit = column_names(&ins.columns);
        explicit.extend(ins.after_columns.iter().map(ident_name));
        if !explicit.is_empty() {
            ctx.map_columns(&table, &outs, Some(&explicit), "INSERT INTO");
        } else if let Some(known) = ctx.known_columns(&table) {
            let fixed = static_partitions(ins.partitioned.as_deref().unwrap_or(&[]));
            let cols: Vec<Name> = known
                .iter()
                .filter(|c| !fixed.contains(c))
                .cloned()
                .collect();
            ctx.map_columns(&table, &outs, Some(&cols), "INSERT INTO");
        } else if from_values {
            if outs.iter().any(|c| !c.sources.is_empty()) {
                ctx.note(format!(
                    "INSERT INTO {} VALUES without a column list: the target's columns are unknown \
                     (give a catalog to map them)",
                    table.text()
                ));
            }
        } else {
            if outs.iter().any(|c| !c.wildcard && !c.sources.is_empty()) {
                ctx.note(format!(
                    "INSERT INTO {} without a column list: target columns are named after the query's \
                     output columns (positional; give a catalog to map them by position)",
                    table.text()
                ));
            }
            ctx.map_columns(&table, &outs, None, "INSERT INTO");
        }
    }
    let scope = Scope::new(None);
    for a in &ins.assignments {
        let src = sources(ctx, Env::of(&scope), &a.value);
        for col in assignment_columns(&a.target) {
            ctx.edge(column_ref(&table, &col), &src);
        }
    }
}

fn is_values(q: &Query) -> bool {
    match q.body.as_ref() {
        SetExpr::Values(_) => true,
        SetExpr::Query(inner) => is_values(inner),
        _ => false,
    }
}

/// Columns given a constant in `PARTITION (dt = '…')`: not fed by the query.
fn static_partitions(partitioned: &[Expr]) -> Vec<Name> {
    partitioned
        .iter()
        .filter_map(|e| match e {
            Expr::BinaryOp { left, .. } => match left.as_ref() {
                Expr::Identifier(id) => Some(ident_name(id)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

pub(crate) fn assignment_columns(target: &AssignmentTarget) -> Vec<Name> {
    match target {
        AssignmentTarget::ColumnName(n) => column_names(std::slice::from_ref(n)),
        AssignmentTarget::Tuple(ns) => column_names(ns),
    }
}

fn create_table(ctx: &mut Ctx<'_>, ct: &CreateTable) {
    let Some(table) = table_name(&ct.name, ctx.default_schema()) else {
        return;
    };
    let declared: Vec<Name> = ct.columns.iter().map(|c| ident_name(&c.name)).collect();
    ctx.write(Dataset::Table(table.clone()));
    let mut columns = (!declared.is_empty()).then(|| declared.clone());
    if let Some(q) = &ct.query {
        let outs = query(ctx, q, None);
        if declared.is_empty() {
            ctx.map_columns(&table, &outs, None, "CREATE TABLE");
            columns = known_names(&outs);
        } else {
            ctx.map_columns(&table, &outs, Some(&declared), "CREATE TABLE");
        }
    }
    let like = match &ct.like {
        Some(CreateTableLikeKind::Parenthesized(l)) | Some(CreateTableLikeKind::Plain(l)) => {
            Some(&l.name)
        }
        None => None,
    };
    for source in like.into_iter().chain(&ct.clone) {
        if let Some(src) = table_name(source, ctx.default_schema()) {
            if columns.is_none() {
                columns = ctx.known_columns(&src).map(|c| c.as_ref().clone());
            }
            ctx.read(Dataset::Table(src));
        }
    }
    ctx.effects.push(Effect::Create { table, columns });
}

fn create_view(ctx: &mut Ctx<'_>, cv: &CreateView) {
    let Some(view) = table_name(&cv.name, ctx.default_schema()) else {
        return;
    };
    let declared: Vec<Name> = cv.columns.iter().map(|c| ident_name(&c.name)).collect();
    ctx.write(Dataset::Table(view.clone()));
    let outs = query(ctx, &cv.query, None);
    let columns = if declared.is_empty() {
        ctx.map_columns(&view, &outs, None, "CREATE VIEW");
        known_names(&outs)
    } else {
        ctx.map_columns(&view, &outs, Some(&declared), "CREATE VIEW");
        Some(declared)
    };
    if let Some(to) = cv
        .to
        .as_ref()
        .and_then(|t| table_name(t, ctx.default_schema()))
    {
        ctx.write(Dataset::Table(to.clone()));
        ctx.map_columns(&to, &outs, None, "CREATE MATERIALIZED VIEW … TO");
    }
    ctx.effects.push(Effect::Create {
        table: view,
        columns,
    });
}

#[cfg(test)]
mod tests {
    use super::super::{Catalog, Dialect, SqlOptions, extract};

    #[test]
    fn static_partition_columns_are_not_fed_by_the_query() {
        let catalog = Catalog::from_json(r#"{"t": ["a", "b", "dt"]}"#).unwrap();
        let opts = SqlOptions::new(Dialect::Hive).with_catalog(catalog);
        let l = extract(
            "INSERT OVERWRITE TABLE t PARTITION (dt='1') SELECT x, y FROM s",
            &opts,
        )
        .unwrap();
        let pairs = l.column_pairs();
        assert_eq!(
            pairs,
            [("s.x".into(), "t.a".into()), ("s.y".into(), "t.b".into())]
        );
    }

    #[test]
    fn create_like_and_clone_read_their_source() {
        let opts = SqlOptions::new(Dialect::Snowflake);
        assert_eq!(
            extract("CREATE TABLE a CLONE b", &opts).unwrap().sources,
            ["b"]
        );
        assert_eq!(
            extract("CREATE TABLE a LIKE b", &opts).unwrap().sources,
            ["b"]
        );
    }

    #[test]
    fn select_into_creates_its_target() {
        let l = extract(
            "SELECT a, b INTO new_t FROM old_t",
            &SqlOptions::new(Dialect::Postgres),
        )
        .unwrap();
        assert_eq!(
            (l.sources.clone(), l.targets.clone()),
            (vec!["old_t".to_string()], vec!["new_t".to_string()])
        );
        assert_eq!(l.columns.len(), 2);
    }

    #[test]
    fn snowflake_swap_and_vertica_swap_function() {
        let l = extract(
            "ALTER TABLE a SWAP WITH b",
            &SqlOptions::new(Dialect::Snowflake),
        )
        .unwrap();
        assert_eq!(
            (l.sources, l.targets),
            (vec!["b".to_string()], vec!["a".to_string()])
        );
        let l = extract(
            "SELECT swap_partitions_between_tables('stage', 'a', 'b', 'target')",
            &SqlOptions::new(Dialect::Postgres),
        )
        .unwrap();
        assert_eq!(
            (l.sources, l.targets),
            (vec!["stage".to_string()], vec!["target".to_string()])
        );
    }
}
