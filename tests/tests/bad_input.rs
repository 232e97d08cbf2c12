//! Peers and users may send anything: each bad input gets a clear error, the
//! offending connection is closed, and the node keeps serving everyone else.

use std::time::Duration;

use stemma_client::{Client, ConnectionString, Error, ObjectPath, PutOptions};
use stemma_protocol::wire::{
    self, Hello, HelloReply, MAX_FRAME_LEN, PROTOCOL_VERSION, Request, Response, WireError,
    close_code,
};
use stemma_tests::{TestNode, raw_connect};

/// Opens a raw connection and completes the handshake by hand.
async fn authenticated(target: &ConnectionString) -> anyhow::Result<quinn::Connection> {
    let conn = raw_connect(target).await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let mut buf = Vec::new();
    let hello = Hello {
        version: PROTOCOL_VERSION,
        token: target.token.clone(),
    };
    wire::encode(&hello, &mut buf)?;
    send.write_all(&buf).await?;
    send.finish()?;
    let reply = recv.read_to_end(1 << 20).await?;
    let reply: HelloReply = wire::decode(&reply[4..])?;
    assert!(matches!(reply, HelloReply::Welcome { .. }), "{reply:?}");
    Ok(conn)
}

/// Sends `bytes` on a new request stream and returns how the node closed the
/// connection.
async fn send_raw(
    conn: &quinn::Connection,
    bytes: &[u8],
) -> anyhow::Result<quinn::ConnectionError> {
    let (mut send, _recv) = conn.open_bi().await?;
    send.write_all(bytes).await?;
    send.finish()?;
    Ok(tokio::time::timeout(Duration::from_secs(10), conn.closed()).await?)
}

fn closed_for_protocol(e: &quinn::ConnectionError) -> bool {
    matches!(e, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == close_code::PROTOCOL.into())
}

async fn still_serving(node: &TestNode, client: &Client) -> anyhow::Result<()> {
    let path = ObjectPath::parse("okay/still-here")?;
    client
        .put(&path, &b"alive"[..], PutOptions::default(), |_| {})
        .await?;
    let fresh = node.client().await?;
    let mut out = Vec::new();
    fresh.get(&path, &mut out, |_| {}).await?;
    assert_eq!(out, b"alive");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_the_offending_connection() -> anyhow::Result<()> {
    let node = TestNode::start(&[])?;
    let target = node.connection();
    let bystander = node.client().await?;

    // Truncated: a header announcing 100 bytes, then 10, then the end.
    let conn = authenticated(&target).await?;
    let mut truncated = 100u32.to_le_bytes().to_vec();
    truncated.extend_from_slice(&[1; 10]);
    assert!(closed_for_protocol(&send_raw(&conn, &truncated).await?));

    // Oversized: a length over the frame limit is refused before anything is read.
    let conn = authenticated(&target).await?;
    let oversized = ((MAX_FRAME_LEN + 1) as u32).to_le_bytes();
    assert!(closed_for_protocol(&send_raw(&conn, &oversized).await?));

    // Garbage: a well-sized frame whose bytes are no request.
    let conn = authenticated(&target).await?;
    let mut garbage = 64u32.to_le_bytes().to_vec();
    garbage.extend((0..64u8).map(|i| i.wrapping_mul(37).wrapping_add(200)));
    assert!(closed_for_protocol(&send_raw(&conn, &garbage).await?));

    // Garbage before the handshake.
    let conn = raw_connect(&target).await?;
    let (mut send, _recv) = conn.open_bi().await?;
    send.write_all(&[0xff; 16]).await?;
    send.finish()?;
    let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await?;
    assert!(closed_for_protocol(&closed), "{closed}");

    still_serving(&node, &bystander).await?;
    assert!(node.metric("stemma_request_errors_total{kind=\"stream\",error=\"protocol\"}")? >= 3.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_gets_nothing() -> anyhow::Result<()> {
    let node = TestNode::start(&[])?;
    let mut target = node.connection();
    target.token = "0".repeat(64);
    let err = Client::connect_to(&target).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized), "{err}");

    // By hand: no request is served before a valid hello.
    let conn = raw_connect(&target).await?;
    let (mut send, _recv) = conn.open_bi().await?;
    let mut buf = Vec::new();
    wire::encode(
        &Request::Head {
            bucket: "abc".into(),
            key: "k".into(),
        },
        &mut buf,
    )?;
    send.write_all(&buf).await?;
    send.finish()?;
    let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await?;
    assert!(
        matches!(closed, quinn::ConnectionError::ApplicationClosed(_)),
        "{closed}"
    );

    // The CLI has an exit code for it.
    let conn_string = target.to_string();
    let out = std::process::Command::new(stemma_tests::stemma_bin())
        .args(["ls", "anything", "--node", &conn_string])
        .output()?;
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
    assert_eq!(
        node.metric("stemma_request_errors_total{kind=\"handshake\",error=\"unauthorized\"}")?,
        2.0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_mismatch_is_named() -> anyhow::Result<()> {
    let node = TestNode::start(&[])?;
    let target = node.connection();
    let conn = raw_connect(&target).await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let mut buf = Vec::new();
    wire::encode(
        &Hello {
            version: 99,
            token: target.token.clone(),
        },
        &mut buf,
    )?;
    send.write_all(&buf).await?;
    send.finish()?;
    let reply = recv.read_to_end(1 << 20).await?;
    let reply: HelloReply = wire::decode(&reply[4..])?;
    assert_eq!(
        reply,
        HelloReply::Rejected(WireError::VersionMismatch {
            client: 99,
            node: PROTOCOL_VERSION
        })
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_are_refused_with_the_rule() -> anyhow::Result<()> {
    let node = TestNode::start(&[])?;
    // The CLI checks before connecting.
    let out = node.cli(&["put", "/dev/null", "Bad_Bucket/key"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lowercase letters"));
    let out = node.cli(&["stat", "nokey"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BUCKET/KEY"));

    // The node checks too, whatever a client sends.
    let conn = authenticated(&node.connection()).await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let mut buf = Vec::new();
    wire::encode(
        &Request::Head {
            bucket: "ok-bucket".into(),
            key: "/abs".into(),
        },
        &mut buf,
    )?;
    send.write_all(&buf).await?;
    send.finish()?;
    let reply = recv.read_to_end(1 << 20).await?;
    match wire::decode::<Response>(&reply[4..])? {
        Response::Error(WireError::InvalidName(msg)) => {
            assert!(msg.contains("does not start with '/'"), "{msg}")
        }
        other => panic!("expected an invalid-name error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_lies_about_its_size_is_not_stored() -> anyhow::Result<()> {
    let node = TestNode::start(&[])?;
    let client = node.client().await?;
    let path = ObjectPath::parse("liar/short")?;
    let options = PutOptions {
        size: Some(10),
        ..Default::default()
    };
    let err = client
        .put(&path, &b"12345"[..], options, |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("announced 10"), "{err}");
    let options = PutOptions {
        size: Some(3),
        ..Default::default()
    };
    let err = client
        .put(&path, &b"12345"[..], options, |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("more than the 3 announced"),
        "{err}"
    );
    assert!(matches!(
        client.head(&path).await.unwrap_err(),
        Error::NotFound(_)
    ));
    assert_eq!(
        node.metric("stemma_stored_bytes")?,
        0.0,
        "nothing of the lies was kept"
    );
    Ok(())
}
