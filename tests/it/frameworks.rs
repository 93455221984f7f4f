//! Real upstream frameworks that users put behind a gateway: Flask under
//! gunicorn, Starlette under uvicorn, Express on Node. Each answers every
//! request with JSON naming the handler its own router picked:
//! `"protected"` for `/admin` and under it, `"public"` otherwise (the apps
//! are in tests/upstreams/). `scripts/test` installs the frameworks into
//! .tools/ and says where with PORTCULLIS_TEST_PYTHONPATH and
//! PORTCULLIS_TEST_NODE_PATH.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::harness::{die_with_parent, free_port, wait_for_port};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    Flask,
    Starlette,
    Express,
}

impl Framework {
    pub const ALL: [Framework; 3] = [Framework::Flask, Framework::Starlette, Framework::Express];

    pub fn name(self) -> &'static str {
        match self {
            Framework::Flask => "flask (gunicorn)",
            Framework::Starlette => "starlette (uvicorn)",
            Framework::Express => "express (node)",
        }
    }
}

/// A running framework server on a free loopback port.
pub struct FrameworkServer {
    pub framework: Framework,
    pub port: u16,
    child: Child,
}

fn tool_path(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is unset: run the tests with scripts/test, which installs Flask, gunicorn, Starlette, uvicorn and Express into .tools/ and sets it"
        )
    })
}

impl FrameworkServer {
    pub fn start(framework: Framework) -> FrameworkServer {
        let port = free_port();
        let apps = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/upstreams");
        let mut command = match framework {
            Framework::Flask | Framework::Starlette => {
                let python_path = format!(
                    "{}:{}",
                    apps.display(),
                    tool_path("PORTCULLIS_TEST_PYTHONPATH")
                );
                let mut command = Command::new("python3");
                if framework == Framework::Flask {
                    command.args([
                        "-m",
                        "gunicorn",
                        "--bind",
                        &format!("127.0.0.1:{port}"),
                        "--workers",
                        "1",
                        "--threads",
                        "4",
                        "--no-control-socket",
                        "flask_app:app",
                    ]);
                } else {
                    command.args([
                        "-m",
                        "uvicorn",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        &port.to_string(),
                        "--no-access-log",
                        "--log-level",
                        "warning",
                        "starlette_app:app",
                    ]);
                }
                command.env("PYTHONPATH", python_path);
                command
            }
            Framework::Express => {
                let mut command = Command::new("node");
                command
                    .arg(apps.join("express_app.js"))
                    .arg(port.to_string())
                    .env("NODE_PATH", tool_path("PORTCULLIS_TEST_NODE_PATH"));
                command
            }
        };
        command
            .current_dir(&apps)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = die_with_parent(&mut command).spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e}; scripts/test installs what it needs",
                framework.name()
            )
        });
        wait_for_port(port, framework.name(), &mut child, None);
        FrameworkServer {
            framework,
            port,
            child,
        }
    }

    pub fn address(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }
}

impl Drop for FrameworkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
