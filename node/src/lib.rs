//! The Stemma node: a store of content-addressed objects served over QUIC, with
//! health and metrics over HTTP. [`Node::start`] runs one in the current tokio
//! runtime; the `stemma` binary wraps it (`stemma node run`, `stemma dev`).

pub mod cli;
mod clock;
pub mod config;
mod http;
pub mod identity;
pub mod lineage;
pub mod metrics;
mod node;
pub mod p2p;
mod replication;
mod server;
pub mod store;

pub use config::NodeConfig;
pub use node::{NODE_FILE, Node, NodeInfo};
