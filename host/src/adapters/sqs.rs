//! The run event queue, from the function's side (queue delivery, behaviour §8): when a
//! queued event fails, its message is hidden for a while before SQS hands it out again, as
//! Lambda spaces the retries of an asynchronous event.

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;

use super::lazy::Lazy;

/// Hides failed messages of the queue they came from for `delay` times their receive count.
pub struct Requeue {
    pub sqs: Lazy<aws_sdk_sqs::Client>,
    /// `QUEUE_RETRY_SECONDS`; zero leaves the message to the queue's visibility timeout.
    pub delay: Duration,
}

/// SQS's longest visibility timeout.
const MAX_HIDDEN: Duration = Duration::from_secs(43_200);

impl Requeue {
    /// How long a message received `receive_count` times stays hidden after it failed:
    /// `delay`, `2 x delay`, ... (at most 12 hours); `None` when `delay` is zero.
    pub fn hidden_for(&self, receive_count: u32) -> Option<Duration> {
        (!self.delay.is_zero()).then(|| self.delay.saturating_mul(receive_count.max(1)).min(MAX_HIDDEN))
    }

    /// Hides the message (`receipt`, from the queue `queue_arn`) for `hidden_for` its
    /// receive count. Only the time to its next try depends on it: should SQS refuse, the
    /// queue's visibility timeout applies instead (the error says so, for a warning).
    pub async fn retry_later(&self, queue_arn: &str, receipt: &str, receive_count: u32) -> Result<Duration, String> {
        let Some(hidden) = self.hidden_for(receive_count) else { return Ok(Duration::ZERO) };
        let url = queue_url(queue_arn).ok_or_else(|| format!("`{queue_arn}` is not an SQS queue's ARN"))?;
        self.sqs
            .get()
            .await
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(hidden.as_secs() as i32)
            .send()
            .await
            .map_err(|e| format!("SQS ChangeMessageVisibility failed: {}", DisplayErrorContext(&e)))?;
        Ok(hidden)
    }
}

/// The URL of the queue an ARN names (`arn:PARTITION:sqs:REGION:ACCOUNT:NAME`), as SQS
/// writes it for the partition.
pub fn queue_url(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (arn_word, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, account, name) = (parts.next()?, parts.next()?, parts.next()?);
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if arn_word != "arn" || service != "sqs" || ![partition, region, account, name].iter().all(|s| plain(s)) {
        return None;
    }
    let domain = if partition == "aws-cn" { "amazonaws.com.cn" } else { "amazonaws.com" };
    Some(format!("https://sqs.{region}.{domain}/{account}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_come_from_arns() {
        assert_eq!(
            queue_url("arn:aws:sqs:eu-west-1:111122223333:ngs360-run-events").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/111122223333/ngs360-run-events")
        );
        assert_eq!(
            queue_url("arn:aws-cn:sqs:cn-north-1:111122223333:q").as_deref(),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/111122223333/q")
        );
        for bad in ["", "arn:aws:sns:eu-west-1:1:q", "arn:aws:sqs:eu-west-1:1", "arn:aws:sqs:eu-west-1:1:q/../x"] {
            assert_eq!(queue_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_failed_message_waits_longer_each_time_it_comes_back() {
        let sqs = Lazy::new(|| async { unreachable!("no call is made") });
        let requeue = Requeue { sqs, delay: Duration::from_secs(60) };
        let waits: Vec<_> = [0, 1, 2, 3, 10_000].map(|n| requeue.hidden_for(n).map(|d| d.as_secs())).into();
        assert_eq!(waits, [Some(60), Some(60), Some(120), Some(180), Some(43_200)]);
        let off = Requeue { delay: Duration::ZERO, ..requeue };
        assert_eq!(off.hidden_for(2), None);
    }
}
