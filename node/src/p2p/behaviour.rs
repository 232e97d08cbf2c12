//! The libp2p behaviours a node runs: identify (addresses), mDNS (discovery on
//! the local network) and Stemma's membership protocol, which carries sealed
//! SWIM messages as small request/response exchanges, and plain streams for
//! the protocols that hold a conversation (lineage sync).

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, identify, mdns, request_response};

/// The membership protocol's name.
pub const MEMBERSHIP_PROTOCOL: StreamProtocol = StreamProtocol::new("/stemma/membership/1");

/// The largest membership message accepted (SWIM packets are ~1.4 KB).
const MAX_MESSAGE: u64 = 64 * 1024;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub identify: identify::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub membership: request_response::Behaviour<RawCodec>,
    pub streams: libp2p_stream::Behaviour,
}

/// Requests are raw bytes (a sealed membership message); responses are empty.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

async fn read_limited<T: AsyncRead + Unpin + Send>(io: &mut T) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(MAX_MESSAGE + 1).read_to_end(&mut buf).await?;
    if buf.len() as u64 > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "membership message over 64 KiB",
        ));
    }
    Ok(buf)
}

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&request).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&response).await?;
        io.close().await
    }
}
