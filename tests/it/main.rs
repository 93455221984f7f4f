//! Integration tests: the real gateway binary over real sockets, with a real
//! redis-server, mongod and upstream (see `harness`).

mod harness;

mod backends;
mod cli;
mod management_api;
mod management_page;
mod oauth_server;
mod proxy;
mod startup;
mod token_endpoint;
