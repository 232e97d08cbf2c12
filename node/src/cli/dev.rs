//! `stemma dev`: a ready-to-use local cluster (three nodes in three zones by
//! default), for trying Stemma and for developing against it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{Output, exit, objects::DEV_DIR, wait_for_signal};
use crate::identity::write_secret;
use crate::{NODE_FILE, Node, NodeConfig};

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the dev cluster keeps its data (one folder per node)
    #[arg(long, default_value = DEV_DIR, value_name = "DIR")]
    dir: PathBuf,
    /// How many nodes to run
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    nodes: u16,
    /// QUIC address of the first node's client endpoint; the others take the
    /// ports 10 and 20 above (any taken port falls back to a free one)
    #[arg(long, default_value = "127.0.0.1:7400", value_name = "ADDR")]
    listen: SocketAddr,
    /// HTTP address of the first node (the others take the next ports)
    #[arg(long, default_value = "127.0.0.1:7480", value_name = "ADDR")]
    http: SocketAddr,
}

fn free_or_any_udp(mut addr: SocketAddr) -> SocketAddr {
    if std::net::UdpSocket::bind(addr).is_err() {
        addr.set_port(0);
    }
    addr
}

fn free_or_any_tcp(mut addr: SocketAddr) -> SocketAddr {
    if std::net::TcpListener::bind(addr).is_err() {
        addr.set_port(0);
    }
    addr
}

/// The dev cluster's shared secret, created once.
fn dev_secret(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join("cluster-secret");
    if !file.exists() {
        write_secret(&file, hex::encode(rand::random::<[u8; 32]>()).as_bytes())?;
    }
    Ok(file)
}

async fn start_cluster(args: &DevArgs) -> anyhow::Result<Vec<Node>> {
    let secret = dev_secret(&args.dir)?;
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..args.nodes {
        let mut listen = args.listen;
        listen.set_port(listen.port() + 10 * i);
        let mut http = args.http;
        http.set_port(http.port() + i);
        let p2p = free_or_any_udp(SocketAddr::new(
            listen.ip(),
            args.listen.port() + 10 * i + 1,
        ));
        let join = nodes
            .first()
            .map(|first| first.info().p2p_addrs.clone())
            .unwrap_or_default();
        let config = NodeConfig {
            data_dir: args.dir.join(format!("node-{}", i + 1)),
            listen: free_or_any_udp(listen),
            http: free_or_any_tcp(http),
            p2p_listen: format!("/ip4/{}/udp/{}/quic-v1", p2p.ip(), p2p.port()),
            join,
            mdns: false,
            zone: format!("zone-{}", i + 1),
            cluster_secret_file: Some(secret.clone()),
            expected_members: u32::from(args.nodes),
            ..NodeConfig::default()
        };
        nodes.push(Node::start(config).await?);
    }
    // Client commands run in this directory find the first node here.
    let first = nodes[0].info();
    write_secret(
        &args.dir.join(NODE_FILE),
        serde_json::to_string_pretty(first)?.as_bytes(),
    )?;
    Ok(nodes)
}

pub async fn run(args: &DevArgs, output: Output) -> u8 {
    let nodes = match start_cluster(args).await {
        Ok(nodes) => nodes,
        Err(e) => {
            eprintln!("error: the dev cluster could not start: {e:#}");
            return exit::FAILURE;
        }
    };
    if output.json {
        let infos: Vec<_> = nodes.iter().map(|n| n.info()).collect();
        println!("{}", serde_json::to_string(&infos).unwrap_or_default());
    } else if !output.quiet {
        print_welcome(&args.dir, &nodes);
    }
    wait_for_signal().await;
    let _ = std::fs::remove_file(args.dir.join(NODE_FILE));
    for node in nodes.into_iter().rev() {
        node.shutdown().await;
    }
    0
}

fn print_welcome(dir: &Path, nodes: &[Node]) {
    let dir = dir.display();
    println!(
        "\nStemma dev cluster: {} nodes, one per zone.\n",
        nodes.len()
    );
    for node in nodes {
        let info = node.info();
        println!(
            "  {zone:<8} node {id}\n           client {client}  metrics http://{http}/metrics\n           p2p {p2p}",
            zone = info.zone,
            id = info.node_id,
            client = info.client_addr,
            http = info.http_addr,
            p2p = info.p2p_addrs.first().map(String::as_str).unwrap_or("-"),
        );
    }
    let first = nodes[0].info();
    println!(
        "\nData is in {dir}/. From this directory the CLI finds the first node by itself.\n\
         Elsewhere:\n\n  export STEMMA_NODE='{conn}'\n\
         \nTry (with `cargo run --release --` in place of `stemma` from a checkout):\n\
         \n  echo 'hello, stemma' > hello.txt\n  stemma put hello.txt demo/hello.txt\n  stemma ls demo\n  stemma get demo/hello.txt -o -\n  stemma members\n  curl -s http://{http}/metrics | grep stemma_\n\
         \nPress Ctrl-C to stop; the data stays in {dir}/ for next time.\n",
        conn = first.connection,
        http = first.http_addr,
    );
}
