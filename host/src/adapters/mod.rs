//! The adapters: the ports (`crate::ports`) implemented with AWS, HTTP and files, plus the
//! metrics sink and the guest's sources.
//!
//! - `aws.rs`: SDK configuration and clients, time limits, error sorting;
//! - `enricher.rs`: `AwsEnricher`, the enrichment port on HealthOmics and S3;
//! - `omics.rs`: HealthOmics GetRun and ListRunTasks, as the AWS CLI's JSON;
//! - `s3.rs`: object reads and the data lake (`S3Archive`);
//! - `secrets.rs`: the callback key from Secrets Manager;
//! - `sqs.rs`: a failed queued event's message hidden until its next try;
//! - `wes.rs`: the NGS360 WES API client (`WesClient`) and its status policy;
//! - `context_file.rs`: the offline enricher (`transform`, `check`);
//! - `metrics.rs`: one CloudWatch EMF line per event;
//! - `refresh.rs`: where the guest comes from, the swappable slot, the refresher.

pub mod aws;
pub mod context_file;
pub mod enricher;
pub mod lazy;
pub mod metrics;
pub mod omics;
pub mod refresh;
pub mod s3;
pub mod secrets;
pub mod sqs;
pub mod tls;
pub mod wes;
