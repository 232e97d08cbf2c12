//! Replicating the lineage graphs: Automerge's sync protocol over libp2p
//! streams (`/stemma/lineage-sync/1`), with every member, pushed as soon as a
//! document changes and repeated every few seconds as anti-entropy, so a node
//! that was cut off catches up when it is reachable again.
//!
//! A session is one stream for one namespace. The opener sends the namespace,
//! then both sides take turns: each turn is one frame (`u32` little-endian
//! length, then an Automerge sync message, or nothing when that side has
//! nothing to say). The session ends after a turn in which neither side said
//! anything, or after 64 turns.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, StreamProtocol};
use libp2p_stream::Control;
use stemma_protocol::membership::MemberState;
use tokio::sync::{Semaphore, mpsc};

use super::Lineage;
use crate::p2p::P2pHandle;

/// The sync protocol's name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/stemma/lineage-sync/1");
/// The largest sync message accepted: a whole graph of a few hundred thousand
/// edges fits.
const MAX_MESSAGE: usize = 256 << 20;
/// Turns after which a session gives up (Automerge needs a handful).
const MAX_TURNS: usize = 64;
/// How long one turn may take.
const TURN_TIMEOUT: Duration = Duration::from_secs(60);
/// Sessions served at once.
const MAX_INBOUND: usize = 16;

/// How often to sync, and when to cut an epoch.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Between anti-entropy rounds.
    pub interval: Duration,
    /// History (operations) after which a graph moves to a new epoch; 0: never.
    pub epoch_ops: u64,
}

/// Runs replication until the node stops: answers peers' sessions, and opens
/// sessions with every live member whenever a document changes and every
/// `interval`, when it also cuts the epochs that are due.
pub async fn run(lineage: Lineage, mut control: Control, p2p: P2pHandle, settings: Settings) {
    let incoming = match control.accept(PROTOCOL) {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::error!(error = %e, "lineage sync cannot accept streams");
            return;
        }
    };
    tokio::spawn(serve(lineage.clone(), incoming, p2p.clone()));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<PeerId>();
    let mut running: HashSet<PeerId> = HashSet::new();
    let mut again: HashSet<PeerId> = HashSet::new();
    let mut tick = tokio::time::interval(settings.interval);
    loop {
        tokio::select! {
            () = lineage.changed() => {}
            _ = tick.tick() => {
                if let Some((me, members)) = members(&p2p).await {
                    lineage.cut_epochs(me, members, settings.epoch_ops).await;
                }
            }
            Some(peer) = done_rx.recv() => {
                running.remove(&peer);
                if !again.remove(&peer) {
                    continue;
                }
            }
        }
        for peer in live_peers(&p2p).await {
            if !running.insert(peer) {
                again.insert(peer);
                continue;
            }
            let (lineage, control, done) = (lineage.clone(), control.clone(), done_tx.clone());
            tokio::spawn(async move {
                sync_with(&lineage, control, peer).await;
                let _ = done.send(peer);
            });
        }
    }
}

/// The other members that are alive.
async fn live_peers(p2p: &P2pHandle) -> Vec<PeerId> {
    p2p.members()
        .await
        .into_iter()
        .skip(1) // this node
        .filter(|(m, _)| m.state == MemberState::Alive)
        .filter_map(|(m, _)| crate::p2p::peer_of(&m.id.node))
        .filter(|peer| !p2p.faults.is_dropped(peer))
        .collect()
}

/// This node, and every other member that has not left with whether it is
/// alive and reachable (for the epoch cut rule).
async fn members(p2p: &P2pHandle) -> Option<(PeerId, Vec<(PeerId, bool)>)> {
    let all = p2p.members().await;
    let (me, others) = all.split_first()?;
    let me = crate::p2p::peer_of(&me.0.id.node)?;
    let others = others
        .iter()
        .filter(|(m, _)| m.state != MemberState::Left)
        .filter_map(|(m, _)| {
            let peer = crate::p2p::peer_of(&m.id.node)?;
            let alive = m.state == MemberState::Alive && !p2p.faults.is_dropped(&peer);
            Some((peer, alive))
        })
        .collect();
    Some((me, others))
}

/// One session per namespace with `peer`.
async fn sync_with(lineage: &Lineage, mut control: Control, peer: PeerId) {
    for namespace in lineage.namespaces() {
        let result = async {
            let stream = control
                .open_stream(peer, PROTOCOL)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open a stream: {e}"))?;
            open_session(lineage, peer, &namespace, stream).await
        }
        .await;
        lineage.metrics().lineage.sync_sessions.inc();
        if let Err(e) = result {
            lineage.metrics().lineage.sync_errors.inc();
            lineage.reset_peer(peer);
            tracing::debug!(%peer, namespace, error = %e, "lineage sync failed");
            return;
        }
    }
}

async fn open_session<S: AsyncRead + AsyncWrite + Unpin>(
    lineage: &Lineage,
    peer: PeerId,
    namespace: &str,
    mut stream: S,
) -> anyhow::Result<()> {
    write_frame(&mut stream, namespace.as_bytes()).await?;
    for _ in 0..MAX_TURNS {
        let ours = lineage.generate_sync(peer, namespace).await;
        write_frame(&mut stream, ours.as_deref().unwrap_or_default()).await?;
        let theirs = read_frame(&mut stream).await?;
        let said_nothing = theirs.is_empty();
        if !theirs.is_empty() {
            lineage.receive_sync(peer, namespace, theirs).await?;
        }
        if ours.is_none() && said_nothing {
            let _ = stream.close().await;
            return Ok(());
        }
    }
    anyhow::bail!("no agreement after {MAX_TURNS} turns")
}

/// Answers members' sessions, a bounded number at a time.
async fn serve(lineage: Lineage, mut incoming: libp2p_stream::IncomingStreams, p2p: P2pHandle) {
    let permits = Arc::new(Semaphore::new(MAX_INBOUND));
    while let Some((peer, stream)) = incoming.next().await {
        if p2p.faults.is_dropped(&peer) {
            continue;
        }
        if !p2p.is_member(&peer).await {
            lineage.metrics().lineage.sync_errors.inc();
            tracing::info!(%peer, "lineage sync from a non-member refused");
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "lineage sync busy; session dropped");
            continue;
        };
        let lineage = lineage.clone();
        tokio::spawn(async move {
            let result = answer_session(&lineage, peer, stream).await;
            lineage.metrics().lineage.sync_sessions.inc();
            if let Err(e) = result {
                lineage.metrics().lineage.sync_errors.inc();
                lineage.reset_peer(peer);
                tracing::debug!(%peer, error = %e, "lineage sync from a peer failed");
            }
            drop(permit);
        });
    }
}

async fn answer_session<S: AsyncRead + AsyncWrite + Unpin>(
    lineage: &Lineage,
    peer: PeerId,
    mut stream: S,
) -> anyhow::Result<()> {
    let namespace = String::from_utf8(read_frame(&mut stream).await?)
        .map_err(|_| anyhow::anyhow!("the namespace is not UTF-8"))?;
    for _ in 0..MAX_TURNS {
        let theirs = match read_frame(&mut stream).await {
            Ok(frame) => frame,
            // The opener closes the stream when the session is over.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if !theirs.is_empty() {
            lineage.receive_sync(peer, &namespace, theirs).await?;
        }
        let ours = lineage.generate_sync(peer, &namespace).await;
        write_frame(&mut stream, ours.as_deref().unwrap_or_default()).await?;
    }
    anyhow::bail!("no agreement after {MAX_TURNS} turns")
}

async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(data.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let write = async {
        stream.write_all(&len.to_le_bytes()).await?;
        stream.write_all(data).await?;
        stream.flush().await
    };
    tokio::time::timeout(TURN_TIMEOUT, write)
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)?
}

/// Reads one frame; refuses one over [`MAX_MESSAGE`] before allocating it.
async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Vec<u8>> {
    let read = async {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_MESSAGE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("lineage sync frame of {len} bytes is over the {MAX_MESSAGE}-byte limit"),
            ));
        }
        let mut data = vec![0u8; len];
        stream.read_exact(&mut data).await?;
        Ok(data)
    };
    tokio::time::timeout(TURN_TIMEOUT, read)
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)?
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use stemma_protocol::lineage::{EntityId, LineageRequest, NewEntity, Op};

    use super::*;
    use crate::metrics::Metrics;

    /// A peer's side of a session, scripted: what it sends is fixed in
    /// advance, what we answer is collected.
    struct Scripted {
        input: futures::io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Scripted {
        fn frames(frames: &[&[u8]]) -> Self {
            let mut input = Vec::new();
            for f in frames {
                input.extend_from_slice(&(f.len() as u32).to_le_bytes());
                input.extend_from_slice(f);
            }
            Self::raw(input)
        }

        fn raw(input: Vec<u8>) -> Self {
            Scripted {
                input: futures::io::Cursor::new(input),
                output: Vec::new(),
            }
        }
    }

    impl AsyncRead for Scripted {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.input).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Scripted {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.output.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn graph_with_one_edit(dir: &std::path::Path) -> Lineage {
        let lineage = Lineage::open(dir, b"node-a".to_vec(), Arc::new(Metrics::default())).unwrap();
        let op = Op::Upsert(NewEntity::parse("table:sales.orders").unwrap());
        lineage.apply_each("default", vec![op]).await.unwrap();
        lineage
    }

    /// Runs sync between two nodes' graphs until both are quiet.
    async fn exchange(a: (&Lineage, PeerId), b: (&Lineage, PeerId)) {
        for _ in 0..32 {
            let m1 = a.0.generate_sync(b.1, "default").await;
            if let Some(m) = &m1 {
                b.0.receive_sync(a.1, "default", m.clone()).await.unwrap();
            }
            let m2 = b.0.generate_sync(a.1, "default").await;
            if let Some(m) = &m2 {
                a.0.receive_sync(b.1, "default", m.clone()).await.unwrap();
            }
            if m1.is_none() && m2.is_none() {
                return;
            }
        }
        panic!("no agreement in 32 rounds");
    }

    #[tokio::test]
    async fn the_smallest_node_cuts_an_epoch_and_its_peer_moves_keeping_its_later_edit() {
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Lineage::open(dir_a.path(), b"a".to_vec(), Arc::new(Metrics::default())).unwrap();
        let b = Lineage::open(dir_b.path(), b"b".to_vec(), Arc::new(Metrics::default())).unwrap();
        let (mut pa, mut pb) = (PeerId::random(), PeerId::random());
        if pb.to_bytes() < pa.to_bytes() {
            std::mem::swap(&mut pa, &mut pb);
        }
        for i in 0..40 {
            let op = Op::Upsert(NewEntity::parse(&format!("table:t{i}")).unwrap());
            a.apply_each("default", vec![op]).await.unwrap();
        }
        // Not yet in sync with b: no cut.
        a.cut_epochs(pa, vec![(pb, true)], 10).await;
        assert_eq!(a.metrics().lineage.epoch.get(), 0);
        exchange((&a, pa), (&b, pb)).await;
        let before = a.metrics().lineage.document_bytes.get();
        // b is not the smallest; a is, once b is in sync and alive.
        b.cut_epochs(pb, vec![(pa, true)], 10).await;
        a.cut_epochs(pa, vec![(pb, false)], 10).await;
        assert_eq!(
            a.metrics().lineage.epoch.get() + b.metrics().lineage.epoch.get(),
            0
        );
        a.cut_epochs(pa, vec![(pb, true)], 10).await;
        assert_eq!(a.metrics().lineage.epoch.get(), 1);
        assert_eq!(a.metrics().lineage.epochs.get(), 1);
        let after = a.metrics().lineage.document_bytes.get();
        assert!(after < before, "history dropped: {before} → {after} bytes");

        // b edits before it hears of the cut; it moves and keeps the edit.
        let late = Op::Upsert(NewEntity::parse("table:late").unwrap());
        b.apply_each("default", vec![late]).await.unwrap();
        exchange((&a, pa), (&b, pb)).await;
        assert_eq!(b.metrics().lineage.epoch.get(), 1);
        assert_eq!(a.heads("default"), b.heads("default"));
        let show = LineageRequest::Show {
            id: EntityId::parse("table:late").unwrap(),
        };
        a.request("default".into(), show).await.unwrap();

        // The move is durable.
        let heads = b.heads("default");
        drop(b);
        let reopened =
            Lineage::open(dir_b.path(), b"b".to_vec(), Arc::new(Metrics::default())).unwrap();
        assert_eq!(reopened.heads("default"), heads);
        assert_eq!(reopened.metrics().lineage.epoch.get(), 1);
    }

    #[tokio::test]
    async fn a_member_that_lacks_the_cut_syncs_the_previous_epoch_first_then_moves() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let open = |i: usize| {
            Lineage::open(
                dirs[i].path(),
                vec![b'a' + i as u8],
                Arc::new(Metrics::default()),
            )
            .unwrap()
        };
        let (a, b, c) = (open(0), open(1), open(2));
        let mut ids = [PeerId::random(), PeerId::random(), PeerId::random()];
        ids.sort_by_key(|p| p.to_bytes());
        let [pa, pb, pc] = ids;
        let upsert = |name: &str| Op::Upsert(NewEntity::parse(name).unwrap());
        for i in 0..30 {
            a.apply_each("default", vec![upsert(&format!("table:t{i}"))])
                .await
                .unwrap();
        }
        exchange((&a, pa), (&c, pc)).await;
        // c falls behind; a cuts without knowing of it (membership views
        // disagreed), at heads only b holds.
        a.apply_each("default", vec![upsert("table:after_c_left")])
            .await
            .unwrap();
        exchange((&a, pa), (&b, pb)).await;
        a.cut_epochs(pa, vec![(pb, true)], 10).await;
        assert_eq!(a.metrics().lineage.epoch.get(), 1);
        c.apply_each("default", vec![upsert("table:offline_on_c")])
            .await
            .unwrap();

        exchange((&a, pa), (&c, pc)).await;
        assert_eq!(c.metrics().lineage.epoch.get(), 1, "c moved");
        assert_eq!(a.heads("default"), c.heads("default"));
        for entity in ["table:offline_on_c", "table:after_c_left"] {
            for node in [&a, &c] {
                let id = EntityId::parse(entity).unwrap();
                let show = LineageRequest::Show { id };
                node.request("default".into(), show).await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_malformed_sync_message_is_an_error_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lineage = graph_with_one_edit(dir.path()).await;
        let heads = lineage.heads("default");
        let peer = PeerId::random();
        let garbage: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(77)).collect();
        let mut stream = Scripted::frames(&[b"default", &garbage]);
        let e = answer_session(&lineage, peer, &mut stream)
            .await
            .unwrap_err();
        assert!(!e.to_string().is_empty());
        assert_eq!(lineage.heads("default"), heads);
        drop(lineage);
        let reopened =
            Lineage::open(dir.path(), b"node-a".to_vec(), Arc::new(Metrics::default())).unwrap();
        assert_eq!(
            reopened.heads("default"),
            heads,
            "the stored graph is intact"
        );
    }

    #[tokio::test]
    async fn an_oversized_or_truncated_frame_and_a_bad_namespace_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lineage = graph_with_one_edit(dir.path()).await;
        let peer = PeerId::random();
        let mut oversized = Vec::new();
        oversized.extend_from_slice(&7u32.to_le_bytes());
        oversized.extend_from_slice(b"default");
        oversized.extend_from_slice(&u32::MAX.to_le_bytes());
        let e = answer_session(&lineage, peer, &mut Scripted::raw(oversized))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("over the"), "{e}");

        let mut truncated = 7u32.to_le_bytes().to_vec();
        truncated.extend_from_slice(b"def");
        assert!(
            answer_session(&lineage, peer, &mut Scripted::raw(truncated))
                .await
                .is_err()
        );

        // A namespace that is not UTF-8 or breaks the naming rules: the
        // session fails at the first message, and no graph is created.
        let message = lineage
            .generate_sync(PeerId::random(), "default")
            .await
            .unwrap();
        for namespace in [&b"\xff\xfe"[..], b"../../etc", b""] {
            let mut stream = Scripted::frames(&[namespace, &message]);
            assert!(
                answer_session(&lineage, peer, &mut stream).await.is_err(),
                "namespace {namespace:?} accepted"
            );
        }
        assert_eq!(lineage.namespaces(), vec!["default".to_string()]);
    }
}
