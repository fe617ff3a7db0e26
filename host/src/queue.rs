//! Lambda mode, queue delivery (behaviour §8): a batch of run events from the SQS queue's
//! event source mapping. Each message's body is one EventBridge event, processed as a
//! directly delivered one is, one after another in the batch's order. A message that fails
//! is hidden for a while (`QUEUE_RETRY_SECONDS` times its receive count) and reported, so
//! that SQS hands it out again and, after the queue's receive limit, moves it to the
//! dead-letter queue; the messages that succeeded are deleted.

use std::sync::Arc;

use serde::Deserialize;
use tracing::warn;

use crate::adapters::sqs::Requeue;
use crate::error::Error;
use crate::pipeline::Handler;
use crate::ports::{Archive, Enricher, Notifier};

/// A batch the event source mapping hands the function.
#[derive(Debug, Deserialize)]
pub struct Batch {
    #[serde(rename = "Records")]
    records: Vec<Message>,
}

/// One message of a batch, as Lambda writes it (the fields used here).
#[derive(Debug, Deserialize)]
struct Message {
    #[serde(rename = "messageId")]
    id: String,
    #[serde(rename = "receiptHandle")]
    receipt: String,
    body: String,
    #[serde(default)]
    attributes: Attributes,
    #[serde(rename = "eventSource")]
    source: String,
    #[serde(rename = "eventSourceARN")]
    queue_arn: String,
}

#[derive(Debug, Default, Deserialize)]
struct Attributes {
    #[serde(rename = "ApproximateReceiveCount")]
    receive_count: Option<String>,
}

impl Message {
    fn receive_count(&self) -> u32 {
        self.attributes.receive_count.as_deref().and_then(|c| c.parse().ok()).unwrap_or(1)
    }
}

impl Batch {
    /// The batch `payload` is, when it is one: an object whose `Records` are all SQS
    /// messages (an EventBridge event has no `Records`; an S3 notification's are `aws:s3`).
    pub fn parse(payload: &str) -> Option<Batch> {
        if !payload.trim_start().starts_with("{\"Records\"") {
            return None;
        }
        let batch: Batch = serde_json::from_str(payload).ok()?;
        (!batch.records.is_empty() && batch.records.iter().all(|m| m.source == "aws:sqs")).then_some(batch)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Processes the batch's events in order. When every one failed, the invocation fails
/// with the first one's error (so that a batch of one, the template's, fails as a directly
/// delivered event does: Lambda's Errors metric and its log line); otherwise it succeeds,
/// naming the failed messages in `batchItemFailures` (the mapping's
/// `ReportBatchItemFailures`).
pub async fn process<E: Enricher, A: Archive, N: Notifier>(
    function: &Handler<E, A, N>,
    requeue: &Requeue,
    batch: Batch,
) -> Result<serde_json::Value, Error> {
    let mut failures = Vec::new();
    let mut first_error = None;
    for message in &batch.records {
        let body: Arc<[u8]> = Arc::from(message.body.as_bytes());
        let Err(e) = function.handle(body).await else { continue };
        let receive_count = message.receive_count();
        match requeue.retry_later(&message.queue_arn, &message.receipt, receive_count).await {
            Ok(hidden) if !hidden.is_zero() => {
                tracing::info!(message_id = %message.id, receive_count, "event failed; it is tried again in {} s", hidden.as_secs())
            }
            Ok(_) => {}
            Err(why) => warn!(
                message_id = %message.id,
                "{why}; the message is tried again after the queue's visibility timeout"
            ),
        }
        failures.push(serde_json::json!({"itemIdentifier": message.id}));
        first_error.get_or_insert(e);
    }
    match first_error {
        Some(e) if failures.len() == batch.records.len() => Err(e),
        _ => Ok(serde_json::json!({"batchItemFailures": failures})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(source: &str, body: &str, count: &str) -> serde_json::Value {
        serde_json::json!({
            "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
            "body": body, "attributes": {"ApproximateReceiveCount": count, "SentTimestamp": "1545082649183"},
            "messageAttributes": {}, "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3", "eventSource": source,
            "eventSourceARN": "arn:aws:sqs:eu-west-1:111122223333:run-events", "awsRegion": "eu-west-1"
        })
    }

    #[test]
    fn only_sqs_batches_are_batches() {
        let sqs = serde_json::json!({"Records": [record("aws:sqs", "{\"detail\":{}}", "2")]}).to_string();
        let batch = Batch::parse(&sqs).expect("an SQS batch");
        assert_eq!((batch.len(), batch.records[0].receive_count()), (1, 2));
        assert_eq!(batch.records[0].body, "{\"detail\":{}}");
        let s3 = serde_json::json!({"Records": [record("aws:s3", "{}", "1")]}).to_string();
        let mixed = serde_json::json!({"Records": [record("aws:sqs", "{}", "1"), record("aws:s3", "{}", "1")]});
        for not in [
            s3.as_str(),
            &mixed.to_string(),
            r#"{"Records": []}"#,
            r#"{"version":"0","detail-type":"Run Status Change","Records":[]}"#,
            r#"{"detail-type":"Run Status Change","source":"aws.omics","detail":{}}"#,
            r#"{"Records": "x"}"#,
        ] {
            assert!(Batch::parse(not).is_none(), "{not}");
        }
    }

    #[test]
    fn a_missing_receive_count_counts_as_the_first() {
        let mut r = record("aws:sqs", "{}", "1");
        r["attributes"] = serde_json::json!({});
        let batch = Batch::parse(&serde_json::json!({"Records": [r]}).to_string()).unwrap();
        assert_eq!(batch.records[0].receive_count(), 1);
    }
}
