//! A redis-server of the test's own, plain or over TLS.

use super::*;

// Redis

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// With TLS: the certificate (also its own CA) and key files.
    tls: Option<(PathBuf, PathBuf)>,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let mut redis = Redis {
            port: free_port(),
            child: None,
            dir,
            tls: None,
        };
        redis.restart();
        redis
    }

    /// A server that speaks TLS only, with a self-signed certificate for
    /// `localhost`; returns it and the certificate's path (a CA to trust).
    pub fn start_tls() -> (Redis, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let certificate = dir.path().join("redis.crt");
        let key = dir.path().join("redis.key");
        std::fs::write(&certificate, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        let mut redis = Redis {
            port: free_port(),
            child: None,
            dir,
            tls: Some((certificate.clone(), key)),
        };
        redis.restart();
        (redis, certificate)
    }

    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://localhost:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// Stops the server (as a crash would: SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server on the same port again.
    pub fn restart(&mut self) {
        self.stop();
        let binary = program(
            "PORTCULLIS_TEST_REDIS_SERVER",
            || on_path("redis-server"),
            "install redis-server (scripts/test does: apt-get install redis-server)",
        );
        let mut command = Command::new(binary);
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some((certificate, key)) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(certificate)
                .arg("--tls-key-file")
                .arg(key)
                .arg("--tls-ca-cert-file")
                .arg(certificate)
                .args(["--tls-auth-clients", "no"]),
        };
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = die_with_parent(&mut command)
            .spawn()
            .expect("start redis-server");
        wait_for_port(self.port, "redis-server", &mut child, None);
        self.child = Some(child);
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
