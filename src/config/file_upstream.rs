//! The parts of `upstreams.<name>` below [`super::FileUpstream`]: server
//! entries in both spellings, the client certificate, selection, health
//! checks and ejection, with their defaults. Ranges are checked in
//! `validate/upstreams/`.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// One entry of `servers`: `"host:port"`, or `{address: "host:port", weight: 3}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpstreamServer {
    pub address: String,
    /// Signed, so that `-1` is reported as a bad weight rather than as a
    /// YAML type error.
    pub weight: i64,
}

// By hand rather than `#[serde(untagged)]`, whose only error is "did not
// match any variant": an operator should read which key is wrong.
impl<'de> Deserialize<'de> for FileUpstreamServer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ServerVisitor)
    }
}

struct ServerVisitor;

impl<'de> Visitor<'de> for ServerVisitor {
    type Value = FileUpstreamServer;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a \"host:port\" string or a map {address: \"host:port\", weight: 1}")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(FileUpstreamServer {
            address: text.to_string(),
            weight: 1,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut address = None;
        let mut weight = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "address" if address.is_some() => {
                    return Err(de::Error::duplicate_field("address"))
                }
                "weight" if weight.is_some() => return Err(de::Error::duplicate_field("weight")),
                "address" => address = Some(map.next_value::<String>()?),
                "weight" => weight = Some(map.next_value::<i64>()?),
                other => return Err(de::Error::unknown_field(other, &["address", "weight"])),
            }
        }
        Ok(FileUpstreamServer {
            address: address.ok_or_else(|| de::Error::missing_field("address"))?,
            weight: weight.unwrap_or(1),
        })
    }
}

/// `client_certificate`: PEM files, relative to the configuration file's
/// folder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileClientCertificate {
    /// The client's certificate, then any intermediates.
    pub certificate_file: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub private_key_file: PathBuf,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FileSelection {
    #[default]
    RoundRobin,
    LeastConnections,
    ConsistentHash,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHealthCheck {
    /// What is asked for with GET, for example `/healthz`.
    pub path: String,
    #[serde(default = "default_check_interval_ms")]
    pub interval_ms: u64,
    /// The whole check (connect, request, response head) within this.
    #[serde(default = "default_check_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive passed checks that bring an unhealthy server back.
    #[serde(default = "default_healthy_after")]
    pub healthy_after: u32,
    /// Consecutive failed checks that take a server out.
    #[serde(default = "default_unhealthy_after")]
    pub unhealthy_after: u32,
    #[serde(default = "default_expect_status")]
    pub expect_status: u16,
}

fn default_check_interval_ms() -> u64 {
    2_000
}
fn default_check_timeout_ms() -> u64 {
    1_000
}
fn default_healthy_after() -> u32 {
    2
}
fn default_unhealthy_after() -> u32 {
    3
}
fn default_expect_status() -> u16 {
    200
}

/// Ejection by real traffic: on unless `failures: 0`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilePassive {
    /// Consecutive connect failures, resets or 5xx answers that eject.
    pub failures: u32,
    pub eject_ms: u64,
}

impl Default for FilePassive {
    fn default() -> Self {
        FilePassive {
            failures: 3,
            eject_ms: 5_000,
        }
    }
}

pub(super) fn default_retries() -> u32 {
    1
}
pub(super) fn default_resolve_interval_seconds() -> u64 {
    30
}
