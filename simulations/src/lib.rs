//! `stemma-sim`: a discrete-event simulator of Stemma clusters.
//!
//! It runs thousands of nodes on one core, reproducibly: a virtual clock, one
//! tree of random generators grown from the scenario seed, a simulated network
//! (latency by zone pair, loss, duplication, reordering, bandwidth, partitions
//! and one-way cuts), and node behaviours (join, leave, crash, restart with or
//! without state, stall, clock skew). The nodes run the **same** state machines
//! as `stemma node run` — `stemma_protocol::membership::Membership` (SWIM) and
//! the lineage documents with their sync — only the sockets and the clock are
//! simulated.
//!
//! ```
//! use stemma_sim::{Scenario, World};
//!
//! let scenario = Scenario::parse("nodes = 20\nduration = 30\n", "example", &[]).unwrap();
//! let outcome = World::new(scenario).run(|_| {});
//! assert_eq!(outcome.metrics.nodes_alive_at_end, 20);
//! assert!(outcome.metrics.initial_convergence_s.is_some());
//! ```

pub mod dist;
pub mod metrics;
pub mod network;
pub mod output;
pub mod plot;
pub mod queue;
pub mod rng;
pub mod scenario;
pub mod sweep;
pub mod world;

pub use scenario::Scenario;
pub use world::{Outcome, World};
