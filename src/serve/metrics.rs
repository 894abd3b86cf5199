//! `GET /metrics`: what a replica has done, in Prometheus' text format (prometheus-client's
//! OpenMetrics encoding, which Prometheus scrapes as is).

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    task: String,
    model: String,
    from: String,
    to: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub(super) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    errors: Family<RequestLabels, Counter>,
    latency: HistogramFamily<EndpointLabels>,
    batch_requests: Histogram,
    loaded_models: Family<ModelLabels, Gauge>,
    /// The same models, for /v1/models.
    loaded_names: Mutex<Vec<[String; 4]>>,
    open_connections: Gauge,
    refused_connections: Counter,
}

impl Metrics {
    pub(super) fn new() -> Self {
        fn latency_histogram() -> Histogram {
            // 5 ms to about 80 s.
            Histogram::new(exponential_buckets(0.005, 2.0, 15))
        }
        let requests = Family::<RequestLabels, Counter>::default();
        let errors = Family::<RequestLabels, Counter>::default();
        let latency = HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let batch_requests = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        let loaded_models = Family::<ModelLabels, Gauge>::default();
        let open_connections = Gauge::default();
        let refused_connections = Counter::default();
        let mut registry = Registry::with_prefix("dragoman");
        registry.register(
            "requests",
            "HTTP requests answered, by endpoint and status",
            requests.clone(),
        );
        registry.register(
            "request_errors",
            "HTTP requests answered with a status of 400 or more",
            errors.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's headers to its answer, by endpoint",
            latency.clone(),
        );
        registry.register(
            "batch_requests",
            "Requests translated together as one batch",
            batch_requests.clone(),
        );
        registry.register(
            "loaded_models",
            "Models loaded and kept (1 per model, task and languages)",
            loaded_models.clone(),
        );
        registry.register(
            "open_connections",
            "HTTP connections open now",
            open_connections.clone(),
        );
        registry.register(
            "refused_connections",
            "HTTP connections answered 503 because --max-connections were open",
            refused_connections.clone(),
        );
        Self {
            registry,
            requests,
            errors,
            latency,
            batch_requests,
            loaded_models,
            loaded_names: Mutex::new(Vec::new()),
            open_connections,
            refused_connections,
        }
    }

    pub(super) fn observe_request(&self, endpoint: &str, status: u16, took: Duration) {
        let labels = RequestLabels {
            endpoint: endpoint.to_string(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        if status >= 400 {
            self.errors.get_or_create(&labels).inc();
        }
        self.latency
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub(super) fn observe_batch(&self, requests: usize) {
        self.batch_requests.observe(requests as f64);
    }

    pub(super) fn set_loaded_models(&self, names: &[[String; 4]]) {
        self.loaded_models.clear();
        for [task, model, from, to] in names {
            let labels = ModelLabels {
                task: task.clone(),
                model: model.clone(),
                from: from.clone(),
                to: to.clone(),
            };
            self.loaded_models.get_or_create(&labels).set(1);
        }
        if let Ok(mut loaded) = self.loaded_names.lock() {
            *loaded = names.to_vec();
        }
    }

    pub(super) fn loaded_models(&self) -> Vec<[String; 4]> {
        self.loaded_names
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    pub(super) fn connection_opened(&self) {
        self.open_connections.inc();
    }

    pub(super) fn connection_closed(&self) {
        self.open_connections.dec();
    }

    pub(super) fn connection_refused(&self) {
        self.refused_connections.inc();
    }

    pub(super) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
