//! Membership across real `stemma node run` processes on 127.0.0.1: five nodes
//! converge, a crash is detected within the configured bound and the restarted
//! node is welcomed back, a graceful stop is recorded as `left`, a node without
//! the cluster secret is kept out, and two nodes find each other by mDNS inside
//! a private network namespace.

use std::process::Command;
use std::time::Duration;

use stemma_client::{MemberRow, MemberState};
use stemma_protocol::membership::MembershipConfig;
use stemma_tests::{TestNode, wait_for};

const SECRET: &str = "membership-test-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_wrong_secret_never_becomes_a_member() -> anyhow::Result<()> {
    let first = TestNode::start_in(Some(SECRET), &["--no-mdns"])?;
    let second = TestNode::start_in(Some(SECRET), &["--no-mdns", "--join", &first.p2p_addr()])?;
    wait_for("two members converge", Duration::from_secs(20), || async {
        Ok(first.members().await?.len() == 2 && second.members().await?.len() == 2)
    })
    .await?;
    let stranger = TestNode::start_in(
        Some("not-the-secret"),
        &["--no-mdns", "--join", &first.p2p_addr()],
    )?;
    // It keeps knocking (join retries every 3 s); give it several tries.
    wait_for(
        "the cluster counts the stranger's rejected messages",
        Duration::from_secs(20),
        || async { Ok(first.metric("stemma_membership_messages_rejected_total")? >= 2.0) },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    for node in [&first, &second] {
        let rows = node.members().await?;
        assert!(
            rows.iter().all(|m| m.node_id != stranger.info.node_id),
            "the stranger is listed"
        );
        assert_eq!(rows.len(), 2);
    }
    assert_eq!(
        stranger.members().await?.len(),
        1,
        "the stranger knows only itself"
    );
    Ok(())
}

/// The detection bound of the nodes' configuration (LAN preset, 16 expected
/// members), plus one poll interval of the test.
fn detection_bound() -> Duration {
    MembershipConfig::lan(16).detection_bound() + Duration::from_millis(500)
}

fn state_of(rows: &[MemberRow], node_id: &str) -> Option<MemberState> {
    rows.iter().find(|m| m.node_id == node_id).map(|m| m.state)
}

async fn all_see(nodes: &[&TestNode], target: &str, state: MemberState) -> anyhow::Result<bool> {
    for node in nodes {
        if state_of(&node.members().await?, target) != Some(state) {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn five_node_cluster() -> anyhow::Result<Vec<TestNode>> {
    let first = TestNode::start_in(Some(SECRET), &["--no-mdns", "--zone", "zone-1"])?;
    let join = first.p2p_addr();
    let mut nodes = vec![first];
    for i in 2..=5 {
        let zone = format!("zone-{i}");
        nodes.push(TestNode::start_in(
            Some(SECRET),
            &["--no-mdns", "--zone", &zone, "--join", &join],
        )?);
    }
    let converged = wait_for("five nodes converge", Duration::from_secs(60), || async {
        for node in &nodes {
            let rows = node.members().await?;
            if rows.len() != 5 || rows.iter().any(|m| m.state != MemberState::Alive) {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await;
    let took = match converged {
        Ok(took) => took,
        Err(e) => {
            for node in &nodes {
                let view: Vec<_> = node
                    .members()
                    .await?
                    .iter()
                    .map(|m| (m.node_id[m.node_id.len() - 6..].to_string(), m.state))
                    .collect();
                eprintln!(
                    "{} sees {view:?}",
                    &node.info.node_id[node.info.node_id.len() - 6..]
                );
            }
            return Err(e);
        }
    };
    eprintln!("five nodes converged in {took:?}");
    Ok(nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_converge_detect_a_crash_and_welcome_it_back() -> anyhow::Result<()> {
    let mut nodes = five_node_cluster().await?;
    // Metadata travelled: every member knows every zone.
    let rows = nodes[0].members().await?;
    let mut zones: Vec<_> = rows.iter().filter_map(|m| m.zone.clone()).collect();
    zones.sort();
    assert_eq!(zones, ["zone-1", "zone-2", "zone-3", "zone-4", "zone-5"]);

    let victim = nodes[2].info.node_id.clone();
    let before = state_incarnation(&nodes[0], &victim).await?;
    nodes[2].kill();
    let others: Vec<&TestNode> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, n)| n)
        .collect();
    let took = wait_for(
        "every node declares the killed one dead",
        detection_bound(),
        || all_see(&others, &victim, MemberState::Dead),
    )
    .await?;
    eprintln!(
        "SIGKILL detected by all in {took:?} (bound {:?})",
        detection_bound()
    );

    nodes[2].restart()?;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_for(
        "the restarted node is alive everywhere",
        Duration::from_secs(30),
        || async {
            for node in &all {
                let rows = node.members().await?;
                let alive = rows
                    .iter()
                    .find(|m| m.node_id == victim)
                    .is_some_and(|m| m.state == MemberState::Alive && m.incarnation > before);
                if !alive {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;
    Ok(())
}

async fn state_incarnation(viewer: &TestNode, target: &str) -> anyhow::Result<u64> {
    let rows = viewer.members().await?;
    Ok(rows
        .iter()
        .find(|m| m.node_id == target)
        .map(|m| m.incarnation)
        .unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_node_is_seen_as_left_not_dead() -> anyhow::Result<()> {
    let mut nodes = five_node_cluster().await?;
    let leaving = nodes[3].info.node_id.clone();
    assert_eq!(nodes[3].terminate()?, Some(0));
    let others: Vec<&TestNode> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, n)| n)
        .collect();
    wait_for(
        "every node records the leave",
        Duration::from_secs(20),
        || all_see(&others, &leaving, MemberState::Left),
    )
    .await?;
    Ok(())
}

/// Set inside the private network namespace the mDNS test re-runs itself in.
const IN_NETNS: &str = "STEMMA_TEST_IN_NETNS";

/// A loopback plus a veth pair (10.77.0.1 and .2) in a new user and network
/// namespace: multicast that never reaches the machine's own network.
const NETNS_SETUP: &str = "ip link set lo up \
    && ip link add stm0 type veth peer name stm1 \
    && ip addr add 10.77.0.1/24 dev stm0 && ip addr add 10.77.0.2/24 dev stm1 \
    && ip link set stm0 up && ip link set stm1 up";

#[test]
fn two_nodes_without_join_find_each_other_by_mdns() -> anyhow::Result<()> {
    const NAME: &str = "two_nodes_without_join_find_each_other_by_mdns";
    if std::env::var_os(IN_NETNS).is_some() {
        return tokio::runtime::Runtime::new()?.block_on(find_each_other_by_mdns());
    }
    let probe = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--net",
            "sh",
            "-c",
            NETNS_SETUP,
        ])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "SKIPPED {NAME}: cannot build a private network for multicast \
                 (unshare + ip link add veth): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Ok(());
        }
        Err(e) => {
            eprintln!("SKIPPED {NAME}: `unshare` is unavailable ({e})");
            return Ok(());
        }
    }
    let status = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "sh", "-c"])
        .arg(format!("{NETNS_SETUP} && exec \"$0\" \"$@\""))
        .arg(std::env::current_exe()?)
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(IN_NETNS, "1")
        .status()?;
    assert!(status.success(), "the mDNS test failed in its namespace");
    Ok(())
}

/// Runs inside the namespace: two nodes listening on every interface, mDNS on,
/// no `--join`.
async fn find_each_other_by_mdns() -> anyhow::Result<()> {
    let args = ["--p2p-listen", "/ip4/0.0.0.0/udp/0/quic-v1"];
    let a = TestNode::start_in(Some(SECRET), &args)?;
    let b = TestNode::start_in(Some(SECRET), &args)?;
    let took = wait_for(
        "two nodes find each other by mDNS",
        Duration::from_secs(30),
        || async {
            for node in [&a, &b] {
                let rows = node.members().await?;
                if rows.len() != 2 || rows.iter().any(|m| m.state != MemberState::Alive) {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;
    eprintln!("found each other by mDNS in {took:?}");
    Ok(())
}
