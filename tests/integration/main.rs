//! The integration suite: one test binary, real peers on loopback (moto's S3 and Secrets
//! Manager, a HealthOmics test server, a WES API test server, a Lambda runtime API server),
//! the real binary and the real guest.

mod support;

mod bursts;
mod cli;
mod dashboard;
mod fuzz;
mod generations;
mod guests;
mod hostile;
mod hostile_lambda;
mod lake;
mod lambda;
mod large_runs;
mod pipeline;
mod private_ca;
mod qemu;
mod queue;
mod recovery;
mod upgrade;
