//! Apache Kafka for tests: one or three KRaft nodes (each broker and
//! controller) started from the jars `.ci/kafka/install` copies from Maven
//! Central, on free loopback ports, with storage in a temporary folder. A node
//! can be killed (SIGKILL) and started again on the same ports and storage.
//! Every node is killed when the cluster is dropped.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Kafka version of `.ci/kafka/pom.xml`.
const VERSION: &str = "4.1.1";
/// Any 16 bytes in base64url: each cluster formats its own storage.
const CLUSTER_ID: &str = "dmlnaWwtdGVzdC1rYWZrYQ";

/// The folder of the broker's jars.
fn libs() -> PathBuf {
    if let Ok(p) = std::env::var("VIGIL_KAFKA_LIBS") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let home = std::env::var("HOME").unwrap_or_default();
    PathBuf::from(home).join(format!(".cache/vigil-kafka/{VERSION}/libs"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

struct Node {
    port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A Kafka cluster on loopback.
pub struct Kafka {
    nodes: Vec<Node>,
    dir: PathBuf,
    /// `host:port` of every node.
    pub bootstrap: String,
}

impl Kafka {
    /// One node.
    pub fn start() -> Self {
        Self::cluster(1)
    }

    /// `n` nodes, each broker and controller; internal topics replicated
    /// over all of them.
    pub fn cluster(n: usize) -> Self {
        let libs = libs();
        assert!(
            libs.join(format!("kafka_2.13-{VERSION}.jar")).exists(),
            "Apache Kafka {VERSION} is not installed in {}: run `.ci/kafka/install` (.ci/run does), or set VIGIL_KAFKA_LIBS",
            libs.display()
        );
        let dir = std::env::temp_dir().join(format!(
            "vigil-kafka-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("kafka dir");
        let log4j = dir.join("log4j2.properties");
        std::fs::write(
            &log4j,
            "rootLogger.level = WARN\nrootLogger.appenderRef.out.ref = out\n\
             appender.out.type = Console\nappender.out.name = out\n\
             appender.out.layout.type = PatternLayout\n\
             appender.out.layout.pattern = [%d] %p %m (%c)%n\n",
        )
        .expect("log4j config");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let voters: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect();
        let replication = n.min(3);
        let mut nodes = vec![];
        for (i, (port, controller)) in ports.iter().enumerate() {
            let data = dir.join(format!("node-{}", i + 1));
            let config = dir.join(format!("node-{}.properties", i + 1));
            std::fs::write(
                &config,
                format!(
                    "process.roles=broker,controller\n\
                     node.id={id}\n\
                     controller.quorum.voters={voters}\n\
                     listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                     advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                     controller.listener.names=CONTROLLER\n\
                     listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                     inter.broker.listener.name=PLAINTEXT\n\
                     log.dirs={data}\n\
                     num.network.threads=2\n\
                     num.io.threads=2\n\
                     auto.create.topics.enable=false\n\
                     group.initial.rebalance.delay.ms=0\n\
                     log.retention.ms=-1\n\
                     offsets.topic.num.partitions=4\n\
                     offsets.topic.replication.factor={replication}\n\
                     transaction.state.log.num.partitions=4\n\
                     transaction.state.log.replication.factor={replication}\n\
                     transaction.state.log.min.isr=1\n\
                     default.replication.factor={replication}\n\
                     min.insync.replicas=1\n\
                     share.coordinator.state.topic.replication.factor={replication}\n\
                     share.coordinator.state.topic.min.isr=1\n",
                    id = i + 1,
                    voters = voters.join(","),
                    data = data.display(),
                ),
            )
            .expect("node config");
            let out = java(&libs, &log4j)
                .args(["kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c"])
                .arg(&config)
                .output()
                .expect("run Kafka's storage tool");
            assert!(
                out.status.success(),
                "formatting Kafka's storage failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            nodes.push(Node {
                port: *port,
                log: dir.join(format!("node-{}.log", i + 1)),
                config,
                child: None,
            });
        }
        let bootstrap = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",");
        let mut kafka = Kafka {
            nodes,
            dir,
            bootstrap,
        };
        for i in 0..n {
            kafka.spawn(i);
        }
        for i in 0..n {
            kafka.wait_listening(i);
        }
        kafka.wait_ready();
        kafka
    }

    /// The bootstrap address of node `i` alone.
    pub fn node_address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }

    fn spawn(&mut self, i: usize) {
        let libs = libs();
        let log4j = self.dir.join("log4j2.properties");
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("node log");
        let err = log.try_clone().expect("node log");
        let child = java(&libs, &log4j)
            .arg("kafka.Kafka")
            .arg(&node.config)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start Kafka (java)");
        node.child = Some(child);
    }

    fn wait_listening(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = self.nodes[i].port;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(Some(status)) = self.nodes[i]
                .child
                .as_mut()
                .map(|c| c.try_wait().ok().flatten())
            {
                panic!("Kafka node {} exited ({status}): {}", i + 1, self.log_of(i));
            }
            assert!(
                Instant::now() < deadline,
                "Kafka node {} did not listen on port {port} within 60 s: {}",
                i + 1,
                self.log_of(i)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the cluster answers metadata with every live node.
    fn wait_ready(&self) {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let live = self.nodes.iter().filter(|n| n.child.is_some()).count();
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .expect("metadata client");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(md) = consumer.fetch_metadata(None, Duration::from_secs(5)) {
                if md.brokers().len() >= live {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Kafka did not report {live} broker(s) within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills node `i` at once (SIGKILL): no clean shutdown.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again on its ports and storage and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_listening(i);
        self.wait_ready();
    }

    /// The log of node `i` (its last 4,000 characters).
    pub fn log_of(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
        let cut = text.len().saturating_sub(4000);
        let cut = (cut..text.len())
            .find(|c| text.is_char_boundary(*c))
            .unwrap_or(text.len());
        text[cut..].to_string()
    }

    /// The cluster's folder (configurations, storage, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `java` with the broker's class path, a small heap and quiet logging.
fn java(libs: &Path, log4j: &Path) -> Command {
    let mut c = Command::new("java");
    c.args([
        "-Xms128m",
        "-Xmx768m",
        "-XX:+UseSerialGC",
        // Two cores: C2 compiler threads would compete with the tests.
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
    ])
    .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
    .arg("-cp")
    .arg(format!("{}/*", libs.display()))
    .stdin(Stdio::null());
    c
}
