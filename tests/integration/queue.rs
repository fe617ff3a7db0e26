//! Queue delivery (the template's default): the real binary in the Lambda runtime loop given
//! batches as the SQS event source mapping writes them, from messages received from moto's
//! SQS, so that the receipt handles and the queue's ARN are SQS's own.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::lambda::{lambda_env, spawn};
use crate::pipeline::KEY;
use crate::support::moto::{self, aws_env, bucket};
use crate::support::omics::Omics;
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::wes::Wes;
use crate::support::{FIXTURE_OUTPUTS, Fixture, serve_fixture};

/// One received message, as the event source mapping hands it to the function.
fn record(m: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    let count = m
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
        .cloned()
        .unwrap_or_else(|| "1".into());
    json!({
        "messageId": m.message_id().unwrap(), "receiptHandle": m.receipt_handle().unwrap(), "body": m.body().unwrap(),
        "attributes": {"ApproximateReceiveCount": count, "SentTimestamp": "1767225600000"},
        "messageAttributes": {}, "md5OfBody": m.md5_of_body().unwrap_or_default(), "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": "us-east-1"
    })
}

/// Receives up to `max` messages (hidden for 900 s, as the mapping's receive would hide them
/// for the queue's visibility timeout), waiting up to `within` for the first.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, max: i32, within: Duration) -> Vec<aws_sdk_sqs::types::Message> {
    let until = Instant::now() + within;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .visibility_timeout(900)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .expect("receive");
        let messages = out.messages().to_vec();
        if !messages.is_empty() || Instant::now() >= until {
            return messages;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A batch of a good event and a malformed one: the good one is processed (archived,
/// called back) and the batch answers with the other's message id; the function hides that
/// message for `QUEUE_RETRY_SECONDS` x its receive count (here 1 s, so it is back at once,
/// where the receive hid it for 900 s). Received again, alone, it fails the invocation,
/// as a directly delivered event that fails does, and is hidden for 2 x 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_batch_reports_its_failed_message_and_hides_it_until_its_retry() {
    let api = RuntimeApi::start().await;
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("queue").await;
    let f = Fixture::load("eventbridge-omics-run-completed");
    let _outputs = FIXTURE_OUTPUTS.lock().await;
    serve_fixture(&omics, &moto::s3().await, &f).await;
    let bad = Fixture::load("malformed-run-event-without-run-id");

    let sqs = moto::sqs().await;
    let url = moto::queue("run-events").await;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    for body in [&f.event, &bad.event] {
        sqs.send_message().queue_url(&url).message_body(String::from_utf8(body.clone()).unwrap()).send().await.unwrap();
    }
    let mut received = receive(&sqs, &url, 10, Duration::from_secs(5)).await;
    if received.len() < 2 {
        received.extend(receive(&sqs, &url, 10, Duration::from_secs(5)).await);
    }
    assert_eq!(received.len(), 2, "both messages received");
    received.sort_by_key(|m| !m.body().unwrap().contains("\"runId\""));
    let (good_id, bad_id) =
        (received[0].message_id().unwrap().to_owned(), received[1].message_id().unwrap().to_owned());

    let mut env = lambda_env(&api);
    env.extend(aws_env(&omics.url()));
    env.extend(
        [
            ("API_SERVER", wes.api_server()),
            ("DATA_LAKE_BUCKET", archive.clone()),
            ("AUTH_TOKEN", KEY.into()),
            ("QUEUE_RETRY_SECONDS", "1".into()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let (proc, _) = spawn(&env);
    let batch = json!({"Records": received.iter().map(|m| record(m, &arn)).collect::<Vec<_>>()});
    api.invoke("r-batch", batch.to_string().as_bytes());
    let Answer::Response(answer) = api.answer("r-batch", Duration::from_secs(30)).await else {
        panic!("a batch with a failed message still answers: {}", proc.stdout())
    };
    assert_eq!(answer, json!({"batchItemFailures": [{"itemIdentifier": bad_id}]}));
    let key = f.expected["archive_key"].as_str().unwrap();
    let archived = moto::s3().await.get_object().bucket(&archive).key(format!("omics-run-events/{key}")).send().await;
    assert!(archived.is_ok(), "the good event is archived");
    assert_eq!(serde_json::to_string(&wes.accepted()[0]).unwrap(), f.record().unwrap());

    // Back after about a second; the good one stays hidden (the mapping deletes it).
    let again = receive(&sqs, &url, 10, Duration::from_secs(5)).await;
    let ids: Vec<&str> = again.iter().filter_map(|m| m.message_id()).collect();
    assert_eq!(ids, [bad_id.as_str()], "only the failed message is visible again, soon (not {good_id})");
    let batch = json!({"Records": [record(&again[0], &arn)]});
    assert_eq!(batch["Records"][0]["attributes"]["ApproximateReceiveCount"], "2");
    api.invoke("r-alone", batch.to_string().as_bytes());
    let Answer::Error(failed) = api.answer("r-alone", Duration::from_secs(30)).await else {
        panic!("a batch whose every message failed fails: {}", proc.stdout())
    };
    assert_eq!(failed["errorType"], "GuestError");
    assert_eq!(failed["errorMessage"], "the guest refused the event: the event has no `runId`");
    let third = receive(&sqs, &url, 10, Duration::from_secs(8)).await;
    assert_eq!(third.iter().filter_map(|m| m.message_id()).collect::<Vec<_>>(), [bad_id.as_str()]);

    tokio::time::sleep(Duration::from_millis(200)).await;
    let stdout = proc.stdout();
    let retries: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"].as_str().is_some_and(|m| m.contains("it is tried again in")))
        .collect();
    let said: Vec<(String, u64)> = retries
        .iter()
        .map(|l| (l["message"].as_str().unwrap().to_owned(), l["receive_count"].as_u64().unwrap_or_default()))
        .collect();
    assert_eq!(
        said,
        [
            ("event failed; it is tried again in 1 s".to_owned(), 1),
            ("event failed; it is tried again in 2 s".to_owned(), 2)
        ],
        "{stdout}"
    );
}
