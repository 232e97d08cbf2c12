//! Membership across real `stemma node run` processes on 127.0.0.1: admission.

use std::time::Duration;

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
