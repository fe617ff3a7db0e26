//! `AwsEnricher`: the enrichment port on HealthOmics (the run, its tasks) and S3 (the
//! run's `outputs.json`).

use super::lazy::Lazy;
use super::{omics, s3};
use crate::error::FetchError;
use crate::ports::{Enricher, Fetched};
use crate::sandbox::{TaskList, TaskRequest};

/// HealthOmics and S3, as the guest's inputs.
#[derive(Clone)]
pub struct AwsEnricher {
    pub omics: Lazy<aws_sdk_omics::Client>,
    pub s3: Lazy<aws_sdk_s3::Client>,
}

impl Enricher for AwsEnricher {
    async fn run(&self, run_id: &str) -> Fetched<String> {
        omics::get_run(self.omics.get().await, run_id).await.map(|run| Some(run.to_string()))
    }

    async fn tasks(&self, run_id: &str, request: TaskRequest) -> Fetched<TaskList> {
        omics::list_tasks(self.omics.get().await, run_id, request).await.map(Some)
    }

    async fn outputs(&self, uri: &str) -> Fetched<Vec<u8>> {
        let Some((bucket, key)) = s3::parse_uri(uri) else {
            return Err(FetchError::Permanent(format!("outputs.json: `{uri}` is not an s3:// URI")));
        };
        match s3::get_object(self.s3.get().await, bucket, key, None).await {
            Ok((bytes, _)) => Ok(Some(bytes)),
            Err(s3::GetError::NotFound) => Ok(None),
            Err(s3::GetError::Fetch(e)) => Err(e),
        }
    }
}
