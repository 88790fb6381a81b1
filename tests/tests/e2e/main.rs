//! End-to-end tests through the real binaries: `gatehouse-origin`, the demo
//! upstream, and the edge worker in `wrangler dev` (workerd). One test
//! binary with a module per flow (every file in tests/ would be its own
//! slow-to-link binary).

mod clients;
mod cold_ratelimit;
mod crash;
mod database;
mod demo;
mod deploy;
mod edge;
mod edge_limits;
mod exchange_attacks;
mod fast_revocation;
mod faults;
mod flows;
mod forwarding;
mod front_attacks;
mod grant_attacks;
mod grants;
mod guide;
mod harness;
mod hostile;
mod idp;
mod kv_unreadable;
mod logout;
mod observability;
mod oidc;
mod par;
mod ratelimit_accuracy;
mod replicas;
mod review19;
mod review19c;
mod review21e;
mod review21g;
mod review21r;
mod review22b;
mod revocation;
mod revocation_attacks;
mod skeleton;
mod userinfo;
