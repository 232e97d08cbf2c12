//! `stemma lineage …`: edit and query the lineage graph. Entities are named
//! `KIND:NAME` (`table:sales.orders`, `job:nightly_load`). `--json` prints the
//! node's answer as is (the same JSON as the HTTP API); otherwise a readable
//! tree or table.

use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use serde_json::Value;
use stemma_protocol::lineage::{
    Attr, AttrKey, AuditFinding, AuditOptions, Cursor, EdgeKind, EdgeSpec, EntityId, EntityKind,
    Impacted, LineageRequest, NamingRule, NamingViolation, NewEntity, Op, Page, PageRequest,
    PathFound, PathOptions, RankOptions, Ranked, Reached, RecoveryOptions, RecoveryPlan, RootCause,
    RootCauseOptions, Shown, Statistics, Traversal,
};

use super::Output;
use super::objects::{Failed, connect, finish, usage};

/// `stemma lineage` and its namespace.
#[derive(Debug, Args)]
pub struct LineageArgs {
    /// The graph to use: each namespace is a separate graph
    #[arg(
        long,
        global = true,
        env = "STEMMA_NAMESPACE",
        default_value = "default"
    )]
    namespace: String,
    #[command(subcommand)]
    command: LineageCommand,
}

/// Which part of a large answer to show.
#[derive(Debug, Clone, Args)]
struct PageArgs {
    /// At most this many results (default 1000, at most 10000)
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Continue after this cursor (printed as `next` by the previous page)
    #[arg(long, value_name = "CURSOR")]
    cursor: Option<String>,
}

impl PageArgs {
    fn page(&self) -> PageRequest {
        PageRequest {
            limit: self.limit,
            after: self.cursor.as_deref().map(Cursor::parse),
        }
    }
}

/// How far and along what a traversal goes.
#[derive(Debug, Clone, Args)]
struct WalkArgs {
    /// Stop after N hops [default: no limit; results come in pages]
    #[arg(long, value_name = "N")]
    depth: Option<u32>,
    /// Report only these entity kinds (comma-separated; traversal passes through others)
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    kinds: Vec<EntityKind>,
    /// Follow only these edge kinds (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    edge_kinds: Vec<EdgeKind>,
    #[command(flatten)]
    page: PageArgs,
}

impl WalkArgs {
    fn traversal(&self) -> Traversal {
        Traversal {
            depth: self.depth,
            entity_kinds: self.kinds.clone(),
            edge_kinds: self.edge_kinds.clone(),
            page: self.page.page(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum LineageCommand {
    /// Create an entity, or set attributes of an existing one.
    ///
    /// Example: stemma lineage add table:sales.orders --attr owner=finance --attr level=2
    Add {
        /// KIND:NAME (kinds: system, database, schema, table, column, job, metric,
        /// report, dashboard, department, object, or your own)
        entity: String,
        /// KEY=VALUE: owner, description, level (integer), schema, tag, or any key
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attrs: Vec<String>,
    },
    /// Set (KEY=VALUE) or remove (KEY=, or tag:NAME=) attributes of an entity.
    Set {
        /// KIND:NAME
        entity: String,
        /// KEY=VALUE, or KEY= to remove it
        #[arg(required = true, value_name = "KEY=VALUE")]
        attrs: Vec<String>,
    },
    /// Remove an entity with its columns and edges (--retire keeps it, flagged).
    Rm {
        /// KIND:NAME
        entity: String,
        /// Keep the entity in the graph, marked retired
        #[arg(long)]
        retire: bool,
    },
    /// Record that data flows from SOURCE to TARGET (missing entities are created).
    ///
    /// Example: stemma lineage link table:staging.orders table:marts.revenue --kind transformation --rule "SELECT …"
    Link {
        /// Where data comes from (KIND:NAME)
        source: String,
        /// Where it goes (KIND:NAME)
        target: String,
        /// mapping, cleaning, transformation, scheduling, application or derivation
        #[arg(long, default_value = "transformation")]
        kind: EdgeKind,
        /// The rule or SQL that produces the target
        #[arg(long)]
        rule: Option<String>,
        /// The job that moves the data (KIND:NAME)
        #[arg(long)]
        job: Option<String>,
        /// Rows or bytes per update
        #[arg(long)]
        volume: Option<u64>,
        /// How often it updates (e.g. daily, hourly)
        #[arg(long)]
        frequency: Option<String>,
    },
    /// Remove the edge SOURCE → TARGET.
    Unlink {
        /// KIND:NAME
        source: String,
        /// KIND:NAME
        target: String,
    },
    /// Show an entity: attributes, role, last run, direct neighbours, conflicts.
    Show {
        /// KIND:NAME
        entity: String,
    },
    /// What an entity is derived from, as a tree.
    Up {
        /// KIND:NAME
        entity: String,
        #[command(flatten)]
        walk: WalkArgs,
    },
    /// What is derived from an entity, as a tree.
    Down {
        /// KIND:NAME
        entity: String,
        #[command(flatten)]
        walk: WalkArgs,
    },
    /// Everything an entity affects downstream, with distance and path.
    Impact {
        /// KIND:NAME
        entity: String,
        #[command(flatten)]
        walk: WalkArgs,
    },
    /// A shortest path from one entity to another.
    Path {
        /// KIND:NAME
        from: String,
        /// KIND:NAME
        to: String,
        /// At most N hops
        #[arg(long, value_name = "N")]
        depth: Option<u32>,
        /// Follow only these edge kinds (comma-separated)
        #[arg(long, value_delimiter = ',', value_name = "KINDS")]
        edge_kinds: Vec<EdgeKind>,
    },
    /// Entities ranked by how much depends on them (downstream reach).
    Rank {
        /// Only these kinds (comma-separated)
        #[arg(long, value_delimiter = ',', value_name = "KINDS")]
        kinds: Vec<EntityKind>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Entities with no upstream and no downstream.
    Islands {
        /// Only these kinds (comma-separated)
        #[arg(long, value_delimiter = ',', value_name = "KINDS")]
        kinds: Vec<EntityKind>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Root-cause candidates of a failed job: its upstream with their last runs.
    RootCause {
        /// KIND:NAME
        entity: String,
        /// At most N hops up
        #[arg(long, value_name = "N")]
        depth: Option<u32>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// What to re-run, in order, after fixing an entity.
    Recover {
        /// KIND:NAME
        entity: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Edges and paths where data flows to a lower security level.
    Audit {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Entities whose names break a rule.
    ///
    /// Example: stemma lineage names --rule 'table=^[a-z_]+\.[a-z_]+$' --rule 'job=^[a-z_]+$'
    Names {
        /// KIND=REGEX (repeatable)
        #[arg(long = "rule", required = true, value_name = "KIND=REGEX")]
        rules: Vec<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Counts by kind and role, degree distribution, coverage.
    Stats,
    /// Extract lineage from SQL (a file, or standard input); --record writes it
    /// into the graph.
    ///
    /// Reads tables read and written, column lineage (target ← sources), and
    /// files or stages as paths. Needs no node unless --record is given. SQL
    /// that does not parse exits with status 2 and records nothing.
    ///
    /// Example: stemma lineage sql etl.sql --dialect snowflake --record --job nightly_load
    Sql(SqlArgs),
    /// Replay OpenLineage events (one JSON event per line) into the graph.
    ///
    /// Each event goes through the node's OpenLineage ingestion, as if a client
    /// had sent it to POST /api/v1/lineage: retried events are recognised, and
    /// an invalid event is reported with its line and skipped.
    ///
    /// Example: stemma lineage ingest events.jsonl
    Ingest {
        /// The file (JSON Lines), or - for standard input
        file: String,
    },
}

/// `stemma lineage sql`.
#[derive(Debug, Args)]
struct SqlArgs {
    /// The SQL file, or - for standard input
    #[arg(default_value = "-")]
    file: String,
    /// generic (ansi), postgres, mysql, mariadb, hive, spark (sparksql,
    /// databricks), snowflake, bigquery, mssql (tsql), redshift, sqlite, duckdb,
    /// oracle, teradata, clickhouse
    #[arg(long, default_value = "generic")]
    dialect: stemma_protocol::sql::Dialect,
    /// Qualify unqualified table names with this schema
    #[arg(long, value_name = "SCHEMA")]
    default_schema: Option<String>,
    /// JSON catalog of table columns, {"schema.table": ["col", ...]}, to expand
    /// SELECT * and positional inserts
    #[arg(long, value_name = "FILE")]
    catalog: Option<std::path::PathBuf>,
    /// Write the lineage into the graph on the node
    #[arg(long)]
    record: bool,
    /// The job that runs this SQL (NAME or job:NAME), recorded with it
    #[arg(long, requires = "record", value_name = "NAME")]
    job: Option<String>,
}

/// Runs a `stemma lineage` command; returns the exit code.
pub async fn run(node: Option<String>, output: Output, args: LineageArgs) -> u8 {
    let result = match &args.command {
        LineageCommand::Sql(sql) => run_sql(node, output, &args.namespace, sql).await,
        LineageCommand::Ingest { file } => run_ingest(node, output, &args.namespace, file).await,
        _ => run_inner(node, output, args).await,
    };
    finish(output, result)
}

/// `stemma lineage ingest`: replays events, 32 in flight, with a progress bar.
async fn run_ingest(
    node: Option<String>,
    output: Output,
    namespace: &str,
    file: &str,
) -> Result<(), Failed> {
    use futures::StreamExt as _;
    let text = if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failed(super::exit::IO, format!("cannot read standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| Failed(super::exit::IO, format!("cannot read {file}: {e}")))?
    };
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let client = connect(node).await?;
    let bar = if output.quiet || output.json {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(lines.len() as u64);
        let style = indicatif::ProgressStyle::with_template(
            "ingest {bar:30} {pos}/{len} events {per_sec} eta {eta}",
        )
        .unwrap_or(indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    };
    let client = &client;
    let results: Vec<(usize, Result<Value, String>)> = futures::stream::iter(lines)
        .map(|(n, line)| async move {
            let result = match serde_json::from_str::<Value>(line) {
                Ok(event) => client
                    .lineage::<Value>(namespace, &LineageRequest::Ingest { event })
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("not JSON: {e}")),
            };
            (n, result)
        })
        .buffer_unordered(32)
        .inspect(|_| bar.inc(1))
        .collect()
        .await;
    bar.finish_and_clear();
    let (mut accepted, mut duplicates, mut rejected) = (0, 0, Vec::new());
    for (n, result) in results {
        match result {
            Ok(answer) if answer["duplicate"] == true => duplicates += 1,
            Ok(_) => accepted += 1,
            Err(e) => rejected.push((n, e)),
        }
    }
    rejected.sort();
    if output.json {
        let rejected: Vec<Value> = rejected
            .iter()
            .map(|(n, e)| serde_json::json!({ "line": n, "error": e }))
            .collect();
        println!(
            "{}",
            serde_json::json!({ "accepted": accepted, "duplicates": duplicates, "rejected": rejected })
        );
    } else if !output.quiet {
        for (n, e) in &rejected {
            eprintln!("line {n}: {e}");
        }
        println!(
            "{accepted} events recorded, {duplicates} duplicates skipped, {} rejected",
            rejected.len()
        );
    }
    if rejected.is_empty() {
        Ok(())
    } else {
        Err(Failed(super::exit::FAILURE, String::new()))
    }
}

/// `stemma lineage sql`: extract, print, and optionally record.
async fn run_sql(
    node: Option<String>,
    output: Output,
    namespace: &str,
    args: &SqlArgs,
) -> Result<(), Failed> {
    use std::io::Read as _;
    use stemma_protocol::sql::{Catalog, SqlOptions, extract};
    let mut sql = String::new();
    if args.file == "-" {
        std::io::stdin()
            .read_to_string(&mut sql)
            .map_err(|e| Failed(super::exit::IO, format!("cannot read standard input: {e}")))?;
    } else {
        sql = std::fs::read_to_string(&args.file)
            .map_err(|e| Failed(super::exit::IO, format!("cannot read {}: {e}", args.file)))?;
    }
    let mut options = SqlOptions::new(args.dialect);
    options.default_schema = args.default_schema.clone();
    if let Some(path) = &args.catalog {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failed(
                super::exit::IO,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        options.catalog =
            Some(Catalog::from_json(&text).map_err(|e| usage(format!("{}: {e}", path.display())))?);
    }
    let lineage = match extract(&sql, &options) {
        Ok(lineage) => lineage,
        Err(e) => {
            // The documented shape for scripts: {"error", "line", "column"}.
            if output.json {
                let error = serde_json::json!({
                    "error": e.message, "line": e.line, "column": e.column,
                });
                println!("{error}");
            } else {
                eprintln!("error: {e}");
            }
            return Err(Failed(super::exit::USAGE, String::new()));
        }
    };
    if args.record {
        let job = args
            .job
            .as_deref()
            .map(|j| {
                stemma_protocol::lineage::provenance::job_entity(j)
                    .map_err(|e| usage(format!("--job {j:?}: {e}")))
            })
            .transpose()?;
        let ops = stemma_protocol::lineage::ops_for_sql(&lineage, &sql, job.as_ref())
            .map_err(|e| usage(e.to_string()))?;
        let count = ops.len();
        let client = connect(node).await?;
        client.lineage_apply(namespace, ops).await?;
        client.close().await;
        if !output.json && !output.quiet {
            eprintln!("recorded {count} operations in namespace {namespace}");
        }
    }
    if output.json {
        println!(
            "{}",
            serde_json::to_string(&lineage).expect("lineage serializes")
        );
    } else if !output.quiet {
        println!("reads:  {}", lineage.sources.join(", "));
        println!("writes: {}", lineage.targets.join(", "));
        if !lineage.paths.is_empty() {
            println!("paths:  {}", lineage.paths.join(", "));
        }
        for column in &lineage.columns {
            println!("  {} ← {}", column.target, column.sources.join(", "));
        }
        for note in &lineage.unresolved {
            println!("note: {note}");
        }
    }
    Ok(())
}

fn entity(text: &str) -> Result<EntityId, Failed> {
    EntityId::parse(text).map_err(|e| usage(format!("{text:?}: {e}")))
}

fn request_for(command: &LineageCommand) -> Result<LineageRequest, Failed> {
    use LineageCommand as C;
    let req = match command {
        C::Add { entity, attrs } => {
            let mut new =
                NewEntity::parse(entity).map_err(|e| usage(format!("{entity:?}: {e}")))?;
            for text in attrs {
                new.attributes
                    .set(&Attr::parse(text).map_err(|e| usage(e.to_string()))?);
            }
            LineageRequest::Apply {
                ops: vec![Op::Upsert(new)],
            }
        }
        C::Set { entity: e, attrs } => {
            let id = entity(e)?;
            let mut ops = Vec::new();
            for text in attrs {
                let op = match text.strip_suffix('=') {
                    Some(key) => Op::UnsetAttr {
                        id: id.clone(),
                        key: AttrKey::parse(key).map_err(|e| usage(e.to_string()))?,
                    },
                    None => Op::SetAttr {
                        id: id.clone(),
                        attr: Attr::parse(text).map_err(|e| usage(e.to_string()))?,
                    },
                };
                ops.push(op);
            }
            LineageRequest::Apply { ops }
        }
        C::Rm { entity: e, retire } => {
            let id = entity(e)?;
            let op = if *retire {
                Op::Retire { id }
            } else {
                Op::Remove { id }
            };
            LineageRequest::Apply { ops: vec![op] }
        }
        C::Link {
            source,
            target,
            kind,
            rule,
            job,
            volume,
            frequency,
        } => {
            let mut spec = EdgeSpec::of(kind.clone());
            spec.rule = rule.clone();
            spec.volume = *volume;
            spec.frequency = frequency.clone();
            spec.job = job.as_deref().map(entity).transpose()?;
            LineageRequest::Apply {
                ops: vec![Op::Link {
                    source: entity(source)?,
                    target: entity(target)?,
                    spec,
                }],
            }
        }
        C::Unlink { source, target } => LineageRequest::Apply {
            ops: vec![Op::Unlink {
                source: entity(source)?,
                target: entity(target)?,
            }],
        },
        C::Show { entity: e } => LineageRequest::Show { id: entity(e)? },
        C::Up { entity: e, walk } => LineageRequest::Upstream {
            id: entity(e)?,
            traversal: walk.traversal(),
        },
        C::Down { entity: e, walk } => LineageRequest::Downstream {
            id: entity(e)?,
            traversal: walk.traversal(),
        },
        C::Impact { entity: e, walk } => LineageRequest::Impact {
            id: entity(e)?,
            traversal: walk.traversal(),
        },
        C::Path {
            from,
            to,
            depth,
            edge_kinds,
        } => LineageRequest::Path {
            from: entity(from)?,
            to: entity(to)?,
            options: PathOptions {
                max_depth: *depth,
                edge_kinds: edge_kinds.clone(),
            },
        },
        C::Rank { kinds, page } => LineageRequest::Rank {
            options: RankOptions {
                entity_kinds: kinds.clone(),
                page: page.page(),
            },
        },
        C::Islands { kinds, page } => LineageRequest::Islands {
            entity_kinds: kinds.clone(),
            page: page.page(),
        },
        C::RootCause {
            entity: e,
            depth,
            page,
        } => LineageRequest::RootCause {
            id: entity(e)?,
            options: RootCauseOptions {
                depth: *depth,
                page: page.page(),
            },
        },
        C::Recover { entity: e, page } => LineageRequest::Recover {
            id: entity(e)?,
            options: RecoveryOptions {
                edge_kinds: Vec::new(),
                page: page.page(),
            },
        },
        C::Audit { page } => LineageRequest::Audit {
            options: AuditOptions { page: page.page() },
        },
        C::Names { rules, page } => {
            let rules = rules
                .iter()
                .map(|text| {
                    let (kind, pattern) = text.split_once('=').ok_or_else(|| {
                        usage(format!(
                            "rule {text:?}: write KIND=REGEX, e.g. table=^[a-z_.]+$"
                        ))
                    })?;
                    Ok(NamingRule {
                        kind: kind
                            .parse()
                            .map_err(|e| usage(format!("rule {text:?}: {e}")))?,
                        pattern: pattern.to_string(),
                    })
                })
                .collect::<Result<_, Failed>>()?;
            LineageRequest::Names {
                rules,
                page: page.page(),
            }
        }
        C::Stats => LineageRequest::Stats,
        C::Sql(_) | C::Ingest { .. } => {
            return Err(usage("not a graph request"));
        }
    };
    Ok(req)
}

async fn run_inner(node: Option<String>, output: Output, args: LineageArgs) -> Result<(), Failed> {
    let request = request_for(&args.command)?;
    let client = connect(node).await?;
    let answer: Value = client.lineage(&args.namespace, &request).await?;
    client.close().await;
    if output.json {
        println!("{answer}");
        return Ok(());
    }
    if output.quiet {
        return Ok(());
    }
    print_readable(&args.command, answer)
}

fn decode<T: DeserializeOwned>(answer: Value) -> Result<T, Failed> {
    serde_json::from_value(answer)
        .map_err(|e| Failed(super::exit::PROTOCOL, format!("unexpected answer: {e}")))
}

fn print_readable(command: &LineageCommand, answer: Value) -> Result<(), Failed> {
    use LineageCommand as C;
    match command {
        C::Add { .. } | C::Set { .. } | C::Rm { .. } | C::Link { .. } | C::Unlink { .. } => {
            let committed: stemma_protocol::lineage::Committed = decode(answer)?;
            match committed.head {
                Some(head) => println!(
                    "ok ({} operations, change {})",
                    committed.ops,
                    &head.to_string()[..12]
                ),
                None => println!("ok (nothing changed)"),
            }
        }
        C::Show { .. } => print_shown(&decode(answer)?),
        C::Up { entity, .. } | C::Down { entity, .. } => {
            print_tree(entity, &decode::<Page<Reached>>(answer)?)
        }
        C::Impact { .. } => {
            let page: Page<Impacted> = decode(answer)?;
            println!("{:>4}  {:<40} PATH", "HOPS", "ENTITY");
            for item in &page.items {
                let path: Vec<String> = item.path.iter().map(ToString::to_string).collect();
                println!(
                    "{:>4}  {:<40} {}",
                    item.distance,
                    item.id.to_string(),
                    path.join(" → ")
                );
            }
            print_more(page.total, page.items.len(), page.next.as_ref());
        }
        C::Path { .. } => match decode::<Option<PathFound>>(answer)? {
            Some(path) => {
                let ids: Vec<String> = path.entities.iter().map(ToString::to_string).collect();
                println!("{}", ids.join(" → "));
            }
            None => println!("no path"),
        },
        C::Rank { .. } => {
            let page: Page<Ranked> = decode(answer)?;
            println!(
                "{:>5}  {:<48} {:>10} {:>7}",
                "RANK", "ENTITY", "DOWNSTREAM", "DIRECT"
            );
            for (i, r) in page.items.iter().enumerate() {
                println!(
                    "{:>5}  {:<48} {:>10} {:>7}",
                    i + 1,
                    r.id.to_string(),
                    r.reach,
                    r.direct
                );
            }
            print_more(page.total, page.items.len(), page.next.as_ref());
        }
        C::Islands { .. } => {
            let page: Page<EntityId> = decode(answer)?;
            for id in &page.items {
                println!("{id}");
            }
            print_more(page.total, page.items.len(), page.next.as_ref());
        }
        C::RootCause { .. } => {
            let cause: RootCause = decode(answer)?;
            match &cause.run {
                Some(run) => println!(
                    "{}: last run {:?} at {}",
                    cause.target, run.status, run.time
                ),
                None => println!("{}: no run recorded", cause.target),
            }
            println!(
                "{:>4}  {:<8} {:<40} LAST RUN",
                "HOPS", "SUSPECT", "UPSTREAM"
            );
            for c in &cause.candidates.items {
                let run = c
                    .run
                    .as_ref()
                    .map_or("-".to_string(), |r| format!("{:?} at {}", r.status, r.time));
                let suspect = if c.suspect { "yes" } else { "" };
                println!(
                    "{:>4}  {:<8} {:<40} {run}",
                    c.distance,
                    suspect,
                    c.id.to_string()
                );
            }
            print_more(
                cause.candidates.total,
                cause.candidates.items.len(),
                cause.candidates.next.as_ref(),
            );
        }
        C::Recover { .. } => {
            let plan: RecoveryPlan = decode(answer)?;
            println!("after fixing {}, re-run in this order:", plan.start);
            println!("{:>5}  ENTITY", "STAGE");
            for step in &plan.steps.items {
                println!("{:>5}  {}", step.stage, step.id);
            }
            for cycle in &plan.cycles {
                let ids: Vec<String> = cycle.iter().map(ToString::to_string).collect();
                println!("cycle (re-run together): {}", ids.join(", "));
            }
            print_more(
                plan.steps.total,
                plan.steps.items.len(),
                plan.steps.next.as_ref(),
            );
        }
        C::Audit { .. } => {
            let page: Page<AuditFinding> = decode(answer)?;
            if page.items.is_empty() {
                println!("no data flows to a lower security level");
            }
            for f in &page.items {
                let path: Vec<String> = f.path.iter().map(ToString::to_string).collect();
                println!(
                    "{:?}: level {} → {}: {}",
                    f.kind,
                    f.from_level,
                    f.to_level,
                    path.join(" → ")
                );
            }
            print_more(page.total, page.items.len(), page.next.as_ref());
        }
        C::Names { .. } => {
            let page: Page<NamingViolation> = decode(answer)?;
            if page.items.is_empty() {
                println!("every name follows the rules");
            }
            for v in &page.items {
                println!("{:<48} does not match {}", v.id.to_string(), v.pattern);
            }
            print_more(page.total, page.items.len(), page.next.as_ref());
        }
        C::Stats => print_stats(&decode(answer)?),
        C::Sql(_) | C::Ingest { .. } => {}
    }
    Ok(())
}

fn print_more(total: usize, shown: usize, next: Option<&Cursor>) {
    if let Some(next) = next {
        println!(
            "({shown} of {total} shown; next page: --cursor '{}')",
            next.as_str()
        );
    }
}

fn print_shown(shown: &Shown) {
    let e = &shown.entity;
    println!("{}  ({})", e.id, e.name);
    println!("  role: {:?}", shown.role);
    let a = &e.attributes;
    let mut fields: Vec<(String, String)> = Vec::new();
    if let Some(v) = &a.owner {
        fields.push(("owner".into(), v.clone()));
    }
    if let Some(v) = &a.description {
        fields.push(("description".into(), v.clone()));
    }
    if let Some(v) = a.level {
        fields.push(("level".into(), v.to_string()));
    }
    if let Some(v) = &a.schema {
        fields.push(("schema".into(), v.clone()));
    }
    if !a.tags.is_empty() {
        fields.push((
            "tags".into(),
            a.tags.iter().cloned().collect::<Vec<_>>().join(", "),
        ));
    }
    for (k, v) in &a.extra {
        fields.push((k.clone(), v.clone()));
    }
    for (k, v) in fields {
        println!("  {k}: {v}");
    }
    if let Some(t) = e.retired {
        println!("  retired at {t}");
    }
    if let Some(run) = &e.run {
        println!("  last run: {:?} at {}", run.status, run.time);
    }
    for (label, ids) in [
        ("upstream", &shown.upstream),
        ("downstream", &shown.downstream),
    ] {
        if !ids.is_empty() {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            println!("  {label}: {}", ids.join(", "));
        }
    }
    if !shown.conflicts.is_empty() {
        println!(
            "  written concurrently on several nodes: {:?}",
            shown.conflicts
        );
    }
}

/// Prints reached entities as a tree under `root`, each under the entity it
/// was reached through.
fn print_tree(root: &str, page: &Page<Reached>) {
    use std::collections::BTreeMap;
    println!("{root}");
    let root_id = EntityId::parse(root).ok();
    let mut children: BTreeMap<Option<&EntityId>, Vec<&Reached>> = BTreeMap::new();
    for item in &page.items {
        // Items reached directly hang under the root.
        let parent = item.via.as_ref().filter(|v| Some(*v) != root_id.as_ref());
        children.entry(parent).or_default().push(item);
    }
    fn walk(
        parent: Option<&EntityId>,
        children: &BTreeMap<Option<&EntityId>, Vec<&Reached>>,
        prefix: &str,
    ) {
        let Some(items) = children.get(&parent) else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            let retired = if item.retired { " (retired)" } else { "" };
            let branch = if last { "└── " } else { "├── " };
            println!("{prefix}{branch}{}{retired}", item.id);
            let next = format!("{prefix}{}", if last { "    " } else { "│   " });
            walk(Some(&item.id), children, &next);
        }
    }
    walk(None, &children, "");
    print_more(page.total, page.items.len(), page.next.as_ref());
}

fn print_stats(s: &Statistics) {
    println!("entities: {}  edges: {}", s.entities, s.edges);
    println!(
        "roles: {} sources, {} intermediate, {} sinks, {} isolated",
        s.by_role.source, s.by_role.intermediate, s.by_role.sink, s.by_role.isolated
    );
    println!(
        "{:<16} {:>8} {:>8} {:>12} {:>8} {:>8}",
        "KIND", "TOTAL", "SOURCES", "INTERMEDIATE", "SINKS", "ISOLATED"
    );
    for (kind, k) in &s.by_kind {
        println!(
            "{kind:<16} {:>8} {:>8} {:>12} {:>8} {:>8}",
            k.total, k.source, k.intermediate, k.sink, k.isolated
        );
    }
    println!(
        "coverage: {} of {} assets have lineage ({:.1} %)",
        s.coverage.with_lineage,
        s.coverage.total,
        s.coverage.ratio * 100.0
    );
    if s.dangling_edges > 0 {
        println!(
            "hidden edges (an endpoint was removed): {}",
            s.dangling_edges
        );
    }
}
