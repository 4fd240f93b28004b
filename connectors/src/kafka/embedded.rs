//! Vigil's embedded broker: `'properties.bootstrap.servers' = 'embedded'` reads
//! from and writes to an in-process Kafka cluster (librdkafka's mock cluster,
//! which speaks the real protocol on a loopback port), so that examples and the
//! demo run on a machine without Kafka. One cluster per process, started on
//! first use and kept until the process exits.

use std::sync::OnceLock;

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::RDKafkaErrorCode;

/// The name that selects the embedded broker.
pub const EMBEDDED: &str = "embedded";

struct Embedded {
    cluster: MockCluster<'static, DefaultProducerContext>,
    servers: String,
}

// SAFETY: the mock cluster is driven by librdkafka's own thread; its handle and
// the calls made on it (create_topic, bootstrap_servers) go through librdkafka's
// thread-safe op queue. The handle is never dropped (it lives in a static).
unsafe impl Send for Embedded {}
unsafe impl Sync for Embedded {}

static CLUSTER: OnceLock<Result<Embedded, String>> = OnceLock::new();

fn cluster() -> Result<&'static Embedded, String> {
    CLUSTER
        .get_or_init(|| {
            let cluster = MockCluster::new(1)
                .map_err(|e| format!("could not start the embedded Kafka broker: {e}"))?;
            let servers = cluster.bootstrap_servers();
            tracing::info!(%servers, "embedded Kafka broker started");
            Ok(Embedded { cluster, servers })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The embedded broker's address (starting it if needed).
pub fn bootstrap_servers() -> Result<String, String> {
    cluster().map(|c| c.servers.clone())
}

/// Creates `topic` with `partitions` partitions on the embedded broker (a
/// topic that exists already is left as it is).
pub fn create_topic(topic: &str, partitions: i32) -> Result<(), String> {
    match cluster()?.cluster.create_topic(topic, partitions, 1) {
        Ok(()) => Ok(()),
        Err(KafkaError::MockCluster(RDKafkaErrorCode::TopicAlreadyExists)) => Ok(()),
        Err(e) => Err(format!(
            "could not create topic '{topic}' on the embedded broker: {e}"
        )),
    }
}

/// Resolves `embedded` to the embedded broker's address; other values pass.
pub fn resolve(bootstrap: &str) -> Result<String, String> {
    if bootstrap.trim() == EMBEDDED {
        bootstrap_servers()
    } else {
        Ok(bootstrap.to_string())
    }
}
