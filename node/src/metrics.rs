//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::store::StoreStats;

/// A request kind label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// put, get, head, list, delete, handshake.
    pub kind: String,
}

/// A request kind and error label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    /// The request kind.
    pub kind: String,
    /// not_found, unauthorized, corrupt, invalid_name, bad_request, protocol, internal…
    pub error: String,
}

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    objects: Gauge,
    chunks: Gauge,
    stored_bytes: Gauge,
    requests: Family<KindLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    /// Object bytes received from clients.
    pub bytes_received: Counter,
    /// Object bytes sent to clients.
    pub bytes_sent: Counter,
    /// Client connections accepted (before authentication).
    pub connections: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("stemma");
        let m = Metrics {
            objects: Gauge::default(),
            chunks: Gauge::default(),
            stored_bytes: Gauge::default(),
            requests: Family::default(),
            errors: Family::default(),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            connections: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("objects", "Objects (names) stored", m.objects.clone());
        registry.register("chunks", "Distinct chunks stored", m.chunks.clone());
        registry.register(
            "stored_bytes",
            "Bytes of chunk data stored, after deduplication",
            m.stored_bytes.clone(),
        );
        registry.register("requests", "Client requests by kind", m.requests.clone());
        registry.register(
            "request_errors",
            "Failed client requests by kind and error",
            m.errors.clone(),
        );
        registry.register(
            "received_bytes",
            "Object bytes received from clients",
            m.bytes_received.clone(),
        );
        registry.register(
            "sent_bytes",
            "Object bytes sent to clients",
            m.bytes_sent.clone(),
        );
        registry.register(
            "client_connections",
            "Client connections accepted",
            m.connections.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts a request.
    pub fn request(&self, kind: &str) {
        self.requests
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// Counts a failed request.
    pub fn error(&self, kind: &str, error: &str) {
        self.errors
            .get_or_create(&ErrorLabel {
                kind: kind.into(),
                error: error.into(),
            })
            .inc();
    }

    /// The exposition text, with the store gauges set from `stats`.
    pub fn render(&self, stats: StoreStats) -> String {
        self.objects.set(stats.objects as i64);
        self.chunks.set(stats.chunks as i64);
        self.stored_bytes.set(stats.chunk_bytes as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
