//! Prometheus metrics behind `GET /metrics` (text exposition format).
//!
//! HTTP requests are counted by method, matched route (never the raw path, so
//! ids in URLs cannot explode the label space) and status. The relay's counters
//! are read at scrape time by a collector, so the relay keeps its own plain
//! atomics and knows nothing of Prometheus.

use crate::relay::Relays;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, text};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

/// Connections closed at once because their address held too many
/// (`http::server`). Process-wide: the accept loop runs before, and
/// independently of, the rest of the server.
pub static CONNECTIONS_REFUSED: std::sync::LazyLock<Counter> = std::sync::LazyLock::new(Counter::default);

/// 1 when the audit log's chain or its checkpoints did not verify at start
/// or since (`audit::checkpoint`), else 0.
pub static AUDIT_BROKEN: std::sync::LazyLock<Gauge> = std::sync::LazyLock::new(Gauge::default);

/// Every metric the server exports. Shared through [`crate::http::AppState`].
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub ws_connections: Gauge,
    pub ws_messages_received: Counter,
    pub ws_errors_sent: Counter,
    /// From a resident's `consult.request` to the first lawyer rung for it.
    pub live_request_to_ring: Histogram,
    /// Consultations begun, by the resident's channel (kiosk, phone).
    pub consultations: Family<ChannelLabels, Counter>,
    /// SIP calls by what became of them (`answered`, `refused_peer`,
    /// `refused_auth`, `busy`, `unknown_number`, `not_acceptable`, `flood`).
    pub phone_calls: Family<PhoneLabels, Counter>,
    pub phone_calls_active: Gauge,
    /// The phone legs' RTP, summed over ended calls.
    pub phone_packets_received: Counter,
    pub phone_packets_lost: Counter,
    /// Each ended call's interarrival jitter (RFC 3550), in seconds.
    pub phone_jitter: Histogram,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhoneLabels {
    pub outcome: String,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms .. ~8 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

impl Metrics {
    pub fn new(relays: Relays, backend: &'static str) -> Metrics {
        let mut registry = Registry::with_prefix("cloudlaw");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", http_requests.clone());
        let http_duration =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request",
            prometheus_client::registry::Unit::Seconds,
            http_duration.clone(),
        );
        let ws_connections = Gauge::default();
        registry.register("ws_connections", "Open WebSocket connections", ws_connections.clone());
        let ws_messages_received = Counter::default();
        registry.register(
            "ws_messages_received",
            "WebSocket messages received",
            ws_messages_received.clone(),
        );
        let ws_errors_sent = Counter::default();
        registry.register("ws_errors_sent", "Typed error replies sent on WebSockets", ws_errors_sent.clone());
        // 0.1 ms .. ~1.1 s, each bucket 1.5 times the last (fine enough to tell 15 from 20 ms)
        let live_request_to_ring = Histogram::new(exponential_buckets(0.0001, 1.5, 24));
        registry.register_with_unit(
            "live_request_to_ring",
            "Time from a resident's request to the first lawyer rung for it",
            prometheus_client::registry::Unit::Seconds,
            live_request_to_ring.clone(),
        );
        registry.register(
            "build",
            "Version of this server",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION")), ("database", backend)]),
        );
        registry.register(
            "http_connections_refused",
            "Connections closed at once: their address already held the most allowed",
            CONNECTIONS_REFUSED.clone(),
        );
        registry.register(
            "audit_chain_broken",
            "1 when the audit log failed its check against the chain and the signed checkpoints",
            AUDIT_BROKEN.clone(),
        );
        let consultations = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "consultations",
            "Consultations begun, by the resident's channel",
            consultations.clone(),
        );
        let phone_calls = Family::<PhoneLabels, Counter>::default();
        registry.register("phone_calls", "SIP calls by outcome (the channel `phone`)", phone_calls.clone());
        let phone_calls_active = Gauge::default();
        registry.register("phone_calls_active", "Phone calls in progress", phone_calls_active.clone());
        let phone_packets_received = Counter::default();
        registry.register(
            "phone_rtp_received",
            "RTP packets received from phones",
            phone_packets_received.clone(),
        );
        let phone_packets_lost = Counter::default();
        registry.register(
            "phone_rtp_lost",
            "RTP packets from phones that never came",
            phone_packets_lost.clone(),
        );
        let phone_jitter = Histogram::new(exponential_buckets(0.000_25, 2.0, 12));
        registry.register_with_unit(
            "phone_jitter",
            "Interarrival jitter of a phone leg at its end (RFC 3550)",
            prometheus_client::registry::Unit::Seconds,
            phone_jitter.clone(),
        );
        registry.register_collector(Box::new(RelayCollector { relays }));
        Metrics {
            consultations,
            phone_calls,
            phone_calls_active,
            phone_packets_received,
            phone_packets_lost,
            phone_jitter,
            registry,
            http_requests,
            http_duration,
            ws_connections,
            ws_messages_received,
            ws_errors_sent,
            live_request_to_ring,
        }
    }

    /// Counts a consultation that began, by how its resident came (`kiosk`, `phone`).
    pub fn consultation_began(&self, channel: &str) {
        self.consultations.get_or_create(&ChannelLabels { channel: channel.into() }).inc();
    }

    /// Counts a SIP call's outcome.
    pub fn phone_call(&self, outcome: &str) {
        self.phone_calls.get_or_create(&PhoneLabels { outcome: outcome.to_owned() }).inc();
    }

    /// Adds an ended phone leg's RTP figures: packets received and lost, and
    /// its interarrival jitter in seconds.
    pub fn phone_leg_ended(&self, received: u64, lost: u64, jitter_secs: f64) {
        self.phone_packets_received.inc_by(received);
        self.phone_packets_lost.inc_by(lost);
        self.phone_jitter.observe(jitter_secs);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode(&mut out, &self.registry);
        out
    }
}

#[derive(Debug)]
struct RelayCollector {
    relays: Relays,
}

impl Collector for RelayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Summed over the relays that answer: a node that does not has no
        // counters to report (its totals return when it does).
        let statuses: Vec<_> = self.relays.entries().iter().filter_map(|r| r.handle.status()).collect();
        let sum = |f: fn(&media_relay::RelayStatus) -> u64| statuses.iter().map(f).sum::<u64>();
        for (name, help, value) in [
            ("relay_rooms", "Rooms open on the relays", sum(|s| s.rooms)),
            ("relay_participants", "Participants in rooms on the relays", sum(|s| s.participants)),
            ("relay_nodes_up", "Relays that answer", statuses.len() as u64),
        ] {
            let gauge = ConstGauge::new(value as i64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        for (name, help, value) in [
            (
                "relay_datagrams_received",
                "UDP datagrams received by the relays",
                sum(|s| s.datagrams_received),
            ),
            ("relay_received_bytes", "Bytes received by the relays", sum(|s| s.bytes_received)),
            (
                "relay_packets_forwarded",
                "RTP packets forwarded to participants",
                sum(|s| s.packets_forwarded),
            ),
            (
                "relay_forwarded_bytes",
                "RTP payload and header bytes forwarded to participants",
                sum(|s| s.bytes_forwarded),
            ),
            (
                "relay_keyframe_requests",
                "Keyframe requests (PLI) sent to publishers",
                sum(|s| s.keyframe_requests),
            ),
            (
                "relay_datagrams_unrouted",
                "Datagrams from addresses no participant uses",
                sum(|s| s.datagrams_unrouted),
            ),
            (
                "relay_send_drops",
                "Datagrams dropped because the socket buffer was full",
                sum(|s| s.send_drops),
            ),
            (
                "relay_input_drops",
                "Datagrams read but dropped because their engine was too far behind",
                sum(|s| s.input_drops),
            ),
            (
                "relay_forwarding_fallbacks",
                "Participants whose forwarded media their peer connection encrypts, not the relay",
                sum(|s| s.forwarding_fallbacks),
            ),
            (
                "relay_packets_received_directly",
                "Media packets a relay decrypted itself, around its peer connections' pipelines",
                sum(|s| s.packets_received_directly),
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        // Every media packet a relay did not send to a receiver, by reason:
        // one family, one series per reason (zero included, so rates work).
        let mut family = encoder.encode_descriptor(
            "relay_packets_not_forwarded",
            "Media packets the relays did not forward to a receiver, by reason",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for reason in media_relay::session::NotForwarded::ALL {
            let value: u64 =
                statuses.iter().map(|s| s.not_forwarded.get(reason.as_str()).copied().unwrap_or(0)).sum();
            let labels = [("reason", reason.as_str())];
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
