//! Integration tests: the real gateway binary over real sockets, with a real
//! redis-server, mongod and upstream (see `harness`).

mod frameworks;
#[macro_use]
mod harness;
mod websocket;
mod wire;

mod backends;
mod cli;
mod connections;
mod differential;
mod management_api;
mod management_page;
mod metadata;
mod oauth_server;
mod one_reading;
mod ops;
mod proxy;
mod reload;
mod routing;
mod startup;
mod token_endpoint;
mod token_lifecycle;
mod transport;
mod upstream_keepalive;
mod upstream_tls;
mod upstreams;
