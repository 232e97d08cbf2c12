//! `stemma dev`: a ready-to-use local node, for trying Stemma and for developing
//! against it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::{Output, exit, objects::DEV_DIR, wait_for_signal};
use crate::{Node, NodeConfig};

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the dev node keeps its data
    #[arg(long, default_value = DEV_DIR, value_name = "DIR")]
    dir: PathBuf,
    /// QUIC address for clients (falls back to a free port if taken)
    #[arg(long, default_value = "127.0.0.1:7400", value_name = "ADDR")]
    listen: SocketAddr,
    /// HTTP address for /health and /metrics (falls back to a free port if taken)
    #[arg(long, default_value = "127.0.0.1:7480", value_name = "ADDR")]
    http: SocketAddr,
}

pub async fn run(args: &DevArgs, output: Output) -> u8 {
    let mut config = NodeConfig {
        data_dir: args.dir.clone(),
        listen: args.listen,
        http: args.http,
        ..NodeConfig::default()
    };
    if std::net::UdpSocket::bind(config.listen).is_err() {
        config.listen.set_port(0);
    }
    if std::net::TcpListener::bind(config.http).is_err() {
        config.http.set_port(0);
    }
    let node = match Node::start(config).await {
        Ok(node) => node,
        Err(e) => {
            eprintln!("error: the dev node could not start: {e:#}");
            return exit::FAILURE;
        }
    };
    let info = node.info();
    if output.json {
        println!("{}", serde_json::to_string(info).unwrap_or_default());
    } else if !output.quiet {
        let dir = args.dir.display();
        println!(
            "\nStemma dev node {id} is running.\n\
             \n  data       {dir}/\n  client     {client} (QUIC)\n  metrics    http://{http}/metrics\n  health     http://{http}/health\n\
             \nFrom this directory the CLI finds the node by itself. Elsewhere:\n\
             \n  export STEMMA_NODE='{conn}'\n\
             \nTry (with `cargo run --release --` in place of `stemma` from a checkout):\n\
             \n  echo 'hello, stemma' > hello.txt\n  stemma put hello.txt demo/hello.txt\n  stemma ls demo\n  stemma get demo/hello.txt -o -\n  stemma stat demo/hello.txt\n  curl -s http://{http}/metrics | grep stemma_\n\
             \nPress Ctrl-C to stop; the data stays in {dir}/ for next time.\n",
            id = info.node_id,
            client = info.client_addr,
            http = info.http_addr,
            conn = info.connection,
        );
    }
    wait_for_signal().await;
    node.shutdown().await;
    0
}
