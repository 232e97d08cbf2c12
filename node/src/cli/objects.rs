//! Client commands: put, get, ls, stat, rm.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use stemma_client::{
    BucketName, Client, ConnectionString, Error, ObjectInfo, ObjectKey, ObjectPath, PutOptions,
};

use super::{Output, exit};
use crate::{NODE_FILE, NodeInfo};

/// Where `stemma dev` keeps its node, and so where client commands look last.
pub(crate) const DEV_DIR: &str = "stemma-dev";

#[derive(Debug, Args)]
pub struct PutArgs {
    /// The file to store; `-` reads standard input
    file: PathBuf,
    /// Where to store it, as BUCKET/KEY (e.g. photos/2024/cat.jpg)
    path: String,
    /// MIME type to record (e.g. text/csv)
    #[arg(long, value_name = "TYPE")]
    content_type: Option<String>,
    /// Metadata to record, as KEY=VALUE (repeatable)
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    metadata: Vec<String>,
    /// An object this one was made from, as BUCKET/KEY (repeatable): recorded
    /// in the lineage graph
    #[arg(long = "derived-from", value_name = "BUCKET/KEY")]
    derived_from: Vec<String>,
    /// The job that made it (NAME or job:NAME): recorded in the lineage graph
    #[arg(long, value_name = "NAME")]
    job: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The object, as BUCKET/KEY
    path: String,
    /// Where to write it: a file, or `-` for standard output [default: the key's
    /// last segment, in the current directory]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// BUCKET, or BUCKET/PREFIX to list only keys starting with PREFIX
    target: String,
}

#[derive(Debug, Args)]
pub struct PathArg {
    /// The object, as BUCKET/KEY
    path: String,
}

/// A failed command: its message and exit code.
pub(super) struct Failed(pub(super) u8, pub(super) String);

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::NotFound(_) => exit::NOT_FOUND,
            Error::Unauthorized => exit::UNAUTHORIZED,
            Error::Unreachable { .. } | Error::Connection(_) | Error::ShuttingDown => {
                exit::UNREACHABLE
            }
            Error::Corrupt { .. } => exit::CORRUPT,
            Error::VersionMismatch { .. } | Error::Protocol(_) => exit::PROTOCOL,
            Error::InvalidConnectionString(_) | Error::InvalidName(_) | Error::Rejected(_) => {
                exit::USAGE
            }
            Error::Io(_) => exit::IO,
            _ => exit::FAILURE,
        };
        Failed(code, e.to_string())
    }
}

pub(super) fn finish(output: Output, result: Result<(), Failed>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(Failed(code, message)) => {
            // An empty message: the command already reported the error.
            if message.is_empty() {
                return code;
            }
            if output.json {
                println!(
                    "{}",
                    serde_json::json!({ "error": message, "exit_code": code })
                );
            } else {
                eprintln!("error: {message}");
            }
            code
        }
    }
}

pub(super) fn usage(message: impl Into<String>) -> Failed {
    Failed(exit::USAGE, message.into())
}

fn local_io(what: &str, path: &Path, e: std::io::Error) -> Failed {
    Failed(exit::IO, format!("cannot {what} {}: {e}", path.display()))
}

/// The node to talk to: `--node`/`STEMMA_NODE` (a connection string or a data
/// dir), else the `stemma dev` node of the current directory.
fn target(node: Option<String>) -> Result<ConnectionString, Failed> {
    let from_dir = |dir: &Path| -> Result<ConnectionString, Failed> {
        let file = dir.join(NODE_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            usage(format!(
                "cannot read {}: {e} (is the node running? it writes this file when ready)",
                file.display()
            ))
        })?;
        let info: NodeInfo = serde_json::from_str(&text)
            .map_err(|e| usage(format!("{} is not a node file: {e}", file.display())))?;
        Ok(info.connection.parse()?)
    };
    match node {
        Some(s) if s.starts_with("stemma://") => Ok(s.parse()?),
        Some(s) if Path::new(&s).is_dir() => from_dir(Path::new(&s)),
        Some(s) => Err(usage(format!(
            "--node {s:?} is neither a connection string (stemma://…) nor a node's data dir"
        ))),
        None if Path::new(DEV_DIR).join(NODE_FILE).exists() => from_dir(Path::new(DEV_DIR)),
        None => Err(usage(
            "no node given: pass --node CONN or set STEMMA_NODE (a node's node.json has its \
             connection string; `stemma dev` starts one and prints it)",
        )),
    }
}

pub(super) async fn connect(node: Option<String>) -> Result<Client, Failed> {
    let target = target(node)?;
    Ok(Client::connect_to(&target).await?)
}

fn parse_path(path: &str) -> Result<ObjectPath, Failed> {
    ObjectPath::parse(path).map_err(|e| usage(e.to_string()))
}

fn progress(output: Output, len: Option<u64>, verb: &str) -> ProgressBar {
    if output.quiet || output.json {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::no_length(),
    };
    let template =
        format!("{verb} {{bar:30}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} eta {{eta}}");
    bar.set_style(ProgressStyle::with_template(&template).unwrap_or(ProgressStyle::default_bar()));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub async fn put(node: Option<String>, output: Output, args: PutArgs) -> u8 {
    finish(output, put_inner(node, output, args).await)
}

async fn put_inner(node: Option<String>, output: Output, args: PutArgs) -> Result<(), Failed> {
    let path = parse_path(&args.path)?;
    let mut metadata = std::collections::BTreeMap::new();
    for pair in &args.metadata {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| usage(format!("--meta {pair:?}: expected KEY=VALUE")))?;
        metadata.insert(k.to_string(), v.to_string());
    }
    let client = connect(node).await?;
    let stdin = args.file.as_os_str() == "-";
    let (reader, size): (Box<dyn tokio::io::AsyncRead + Unpin + Send>, Option<u64>) = if stdin {
        (Box::new(tokio::io::stdin()), None)
    } else {
        let file = tokio::fs::File::open(&args.file)
            .await
            .map_err(|e| local_io("read", &args.file, e))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| local_io("read", &args.file, e))?
            .len();
        (Box::new(file), Some(len))
    };
    let bar = progress(output, size, "put");
    let derived_from = args
        .derived_from
        .iter()
        .map(|p| parse_path(p))
        .collect::<Result<_, _>>()?;
    let options = PutOptions {
        content_type: args.content_type,
        metadata,
        size,
        derived_from,
        job: args.job,
    };
    let stored = client
        .put(&path, reader, options, |sent| bar.set_position(sent))
        .await;
    bar.finish_and_clear();
    let stored = stored.map_err(|e| match e {
        Error::Io(io) => local_io("read", &args.file, io),
        other => other.into(),
    })?;
    if output.json {
        let mut json = info_json(&stored.info);
        json["new_bytes"] = stored.new_bytes.into();
        println!("{json}");
    } else if !output.quiet {
        println!(
            "stored {path} ({}, {} chunks, object {}; {} new)",
            human_bytes(stored.info.size),
            stored.info.chunks,
            stored.info.object_id.short(),
            human_bytes(stored.new_bytes),
        );
    }
    client.close().await;
    Ok(())
}

pub async fn get(node: Option<String>, output: Output, args: GetArgs) -> u8 {
    finish(output, get_inner(node, output, args).await)
}

async fn get_inner(node: Option<String>, output: Output, args: GetArgs) -> Result<(), Failed> {
    let path = parse_path(&args.path)?;
    let client = connect(node).await?;
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    let info = if to_stdout {
        let stdout = tokio::io::stdout();
        client.get(&path, stdout, |_| {}).await?
    } else {
        let dest = match args.output {
            Some(p) => p,
            None => {
                let name = path.key.as_str().rsplit('/').next().unwrap_or_default();
                if name.is_empty() || name == "." || name == ".." {
                    return Err(usage(format!(
                        "cannot name a file after {path}: pass -o FILE"
                    )));
                }
                PathBuf::from(name)
            }
        };
        // Write beside the destination, and rename only once every byte is verified.
        let partial = dest.with_file_name(format!(
            ".{}.partial",
            dest.file_name().unwrap_or_default().to_string_lossy()
        ));
        let file = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| local_io("write", &partial, e))?;
        let head = client.head(&path).await?;
        let bar = progress(output, Some(head.size), "get");
        let result = client.get(&path, file, |got| bar.set_position(got)).await;
        bar.finish_and_clear();
        let info = match result {
            Ok(info) => info,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(match e {
                    Error::Io(io) => local_io("write", &dest, io),
                    other => other.into(),
                });
            }
        };
        tokio::fs::rename(&partial, &dest)
            .await
            .map_err(|e| local_io("write", &dest, e))?;
        if output.json {
            println!("{}", info_json(&info));
        } else if !output.quiet {
            eprintln!("wrote {} ({})", dest.display(), human_bytes(info.size));
        }
        info
    };
    let _ = info;
    client.close().await;
    Ok(())
}

pub async fn ls(node: Option<String>, output: Output, args: LsArgs) -> u8 {
    finish(output, ls_inner(node, output, args).await)
}

async fn ls_inner(node: Option<String>, output: Output, args: LsArgs) -> Result<(), Failed> {
    let (bucket, prefix) = args.target.split_once('/').unwrap_or((&args.target, ""));
    let bucket = BucketName::parse(bucket).map_err(|e| usage(e.to_string()))?;
    ObjectKey::check_prefix(prefix).map_err(|e| usage(e.to_string()))?;
    let client = connect(node).await?;
    let entries = client.list(&bucket, prefix).await?;
    if output.json {
        let rows: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "key": e.key,
                    "size": e.size,
                    "object_id": e.object_id.to_string(),
                    "modified": rfc3339(e.modified_ms),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        for e in &entries {
            println!(
                "{:>10}  {}  {}",
                human_bytes(e.size),
                rfc3339(e.modified_ms),
                e.key
            );
        }
        if !output.quiet && entries.is_empty() {
            eprintln!("no keys in {bucket} start with {prefix:?}");
        }
    }
    client.close().await;
    Ok(())
}

pub async fn stat(node: Option<String>, output: Output, args: PathArg) -> u8 {
    finish(output, stat_inner(node, output, args).await)
}

async fn stat_inner(node: Option<String>, output: Output, args: PathArg) -> Result<(), Failed> {
    let path = parse_path(&args.path)?;
    let client = connect(node).await?;
    let info = client.head(&path).await?;
    if output.json {
        println!("{}", info_json(&info));
    } else {
        println!("path:          {path}");
        println!(
            "size:          {} ({} bytes)",
            human_bytes(info.size),
            info.size
        );
        println!("object id:     {}", info.object_id);
        println!("chunks:        {}", info.chunks);
        println!(
            "content type:  {}",
            info.content_type.as_deref().unwrap_or("-")
        );
        println!("modified:      {}", rfc3339(info.modified_ms));
        for (k, v) in &info.metadata {
            println!("meta:          {k}={v}");
        }
    }
    client.close().await;
    Ok(())
}

pub async fn rm(node: Option<String>, output: Output, args: PathArg) -> u8 {
    finish(output, rm_inner(node, output, args).await)
}

async fn rm_inner(node: Option<String>, output: Output, args: PathArg) -> Result<(), Failed> {
    let path = parse_path(&args.path)?;
    let client = connect(node).await?;
    client.delete(&path).await?;
    if output.json {
        println!("{}", serde_json::json!({ "deleted": path.to_string() }));
    } else if !output.quiet {
        println!("removed {path}");
    }
    client.close().await;
    Ok(())
}

pub async fn members(node: Option<String>, output: Output) -> u8 {
    finish(output, members_inner(node, output).await)
}

async fn members_inner(node: Option<String>, output: Output) -> Result<(), Failed> {
    let client = connect(node).await?;
    let rows = client.members().await?;
    if output.json {
        println!("{}", serde_json::to_string(&rows).unwrap_or_default());
    } else {
        println!(
            "{:<10} {:<10} {:<8} {:>12} {:>10}  ADDRESSES",
            "ID", "ZONE", "STATE", "INCARNATION", "HEARD"
        );
        for (i, m) in rows.iter().enumerate() {
            let heard = match (i, m.last_heard_ms_ago) {
                (0, _) => "self".to_string(),
                (_, Some(ms)) => format!("{:.1}s ago", ms as f64 / 1000.0),
                (_, None) => "never".to_string(),
            };
            let short = &m.node_id[m.node_id.len().saturating_sub(8)..];
            let state = format!("{:?}", m.state).to_lowercase();
            let mut addrs: Vec<String> = m
                .client_addr
                .iter()
                .map(|a| format!("client {a}"))
                .collect();
            addrs.extend(m.p2p_addrs.iter().map(|a| format!("p2p {a}")));
            println!(
                "{:<10} {:<10} {:<8} {:>12} {:>10}  {}",
                short,
                m.zone.as_deref().unwrap_or("?"),
                state,
                m.incarnation,
                heard,
                addrs.join(", ")
            );
        }
    }
    client.close().await;
    Ok(())
}

pub async fn status(node: Option<String>, output: Output) -> u8 {
    finish(output, status_inner(node, output).await)
}

async fn status_inner(node: Option<String>, output: Output) -> Result<(), Failed> {
    let client = connect(node).await?;
    let report = client.status().await?;
    client.close().await;
    if output.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
        return Ok(());
    }
    println!(
        "layout: {} nodes, {} partitions, RF {}, W {}; changed {} times since this node started",
        report.nodes,
        report.partitions,
        report.replication,
        report.write_quorum,
        report.layout_changes
    );
    if report.partitions_out_of_sync == 0 {
        println!("repair: every partition matched its peers in the last anti-entropy round");
    } else {
        println!(
            "repair: {} partitions differed from a peer's in the last anti-entropy round (moves or repairs in progress)",
            report.partitions_out_of_sync
        );
    }
    println!(
        "        {} items copied by this node since it started",
        report.repairs
    );
    println!();
    println!(
        "{:<10} {:<10} {:>9} {:>9} {:>9} {:>12}",
        "NODE", "ZONE", "REPLICAS", "OBJECTS", "CHUNKS", "STORED"
    );
    for n in &report.per_node {
        let short = &n.node_id[n.node_id.len().saturating_sub(8)..];
        let (objects, chunks, bytes) = match n.stored {
            Some((o, c, b)) => (o.to_string(), c.to_string(), human_bytes(b)),
            None => ("?".into(), "?".into(), "no answer".into()),
        };
        println!(
            "{short:<10} {:<10} {:>9} {objects:>9} {chunks:>9} {bytes:>12}",
            n.zone, n.replicas
        );
    }
    Ok(())
}

fn info_json(info: &ObjectInfo) -> serde_json::Value {
    serde_json::json!({
        "bucket": info.bucket,
        "key": info.key,
        "object_id": info.object_id.to_string(),
        "size": info.size,
        "chunks": info.chunks,
        "content_type": info.content_type,
        "metadata": info.metadata,
        "modified": rfc3339(info.modified_ms),
    })
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn human_bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}
