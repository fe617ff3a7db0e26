//! CloudWatch console links to a run's logs (behaviour §4).

#[allow(unused_imports)]
use crate::prelude::*;

use alloc::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::context::Task;

/// The log group HealthOmics writes to, unless GetRun names another.
pub const DEFAULT_LOG_GROUP: &str = "/aws/omics/WorkflowLog";

/// The most entries `task_logs` holds (behaviour §4, large runs).
pub const TASK_LOGS_MAX: usize = 1000;

/// The CloudWatch console of one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Console {
    host: String,
    region: String,
}

impl Console {
    /// The console for a partition (`aws`, `aws-cn`, `aws-us-gov`) and region. Other
    /// partitions get the commercial console's host name.
    pub fn new(partition: &str, region: &str) -> Console {
        let host = match partition {
            "aws-cn" => format!("{region}.console.amazonaws.cn"),
            "aws-us-gov" => format!("{region}.console.amazonaws-us-gov.com"),
            _ => format!("{region}.console.aws.amazon.com"),
        };
        Console { host, region: region.to_owned() }
    }

    /// The console for the region and partition of an ARN (`arn:{partition}:{service}:{region}:...`).
    pub fn from_arn(arn: &str) -> Option<Console> {
        let mut parts = arn.splitn(5, ':');
        let (Some("arn"), Some(partition), Some(_service), Some(region)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        (!partition.is_empty() && !region.is_empty()).then(|| Console::new(partition, region))
    }

    /// The URL of a log group.
    pub fn group_url(&self, group: &str) -> String {
        format!(
            "https://{}/cloudwatch/home?region={}#logsV2:log-groups/log-group/{}",
            self.host,
            self.region,
            encode(group)
        )
    }

    /// The URL of one stream of a log group.
    pub fn stream_url(&self, group: &str, stream: &str) -> String {
        format!("{}/log-events/{}", self.group_url(group), encode(stream))
    }
}

/// The console's own encoding of a path segment: percent-encoded twice, then `%` written
/// as `$`, so `/` becomes `$252F`.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str("$25");
            out.push(char::from_digit(u32::from(b >> 4), 16).unwrap().to_ascii_uppercase());
            out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap().to_ascii_uppercase());
        }
    }
    out
}

/// What the log links are built from.
pub struct RunLogs<'a> {
    pub console: &'a Console,
    pub group: &'a str,
    pub run_id: &'a str,
    pub status: &'a str,
    /// The run's UUID, for the manifest stream.
    pub uuid: Option<&'a str>,
    /// The run's tasks to link; `None` when they could not be read.
    pub tasks: Option<&'a [Task<'a>]>,
    /// The run has more tasks than `tasks` lists.
    pub truncated: bool,
}

/// The tasks `task_logs` lists (behaviour §4, large runs): all of them when the host read
/// them all; else the failed ones first, then the others in ListRunTasks order, each task
/// once, at most [`TASK_LOGS_MAX`] in all. The flag says whether the run has tasks that are
/// not listed.
pub fn bounded<'a>(first: Vec<Task<'a>>, failed: Vec<Task<'a>>, more: bool) -> (Vec<Task<'a>>, bool) {
    if !more && first.len() <= TASK_LOGS_MAX {
        return (first, false);
    }
    let mut kept: Vec<Task<'a>> = Vec::with_capacity(TASK_LOGS_MAX);
    let mut ids: BTreeMap<&'a str, ()> = BTreeMap::new();
    for task in failed.into_iter().chain(first) {
        if kept.len() == TASK_LOGS_MAX {
            break;
        }
        if ids.insert(task.id, ()).is_none() {
            kept.push(task);
        }
    }
    (kept, true)
}

/// The `log_urls` object: `run_log`; `task_logs`, with `task_logs_base_url` and
/// `task_logs_truncated` beside it when the run has more tasks than it lists (or
/// `task_logs_base_url` alone when there are no tasks to link); `manifest_log` (when the
/// run's UUID is known); `engine_log` (FAILED only).
pub fn log_urls(r: &RunLogs<'_>) -> Map<String, Value> {
    let mut urls = Map::new();
    let run_stream = format!("run/{}", r.run_id);
    urls.insert("run_log".into(), r.console.stream_url(r.group, &run_stream).into());
    match r.tasks {
        Some(tasks) if !tasks.is_empty() => {
            urls.insert("task_logs".into(), Value::Object(task_logs(r, tasks)));
            if r.truncated {
                urls.insert("task_logs_base_url".into(), r.console.group_url(r.group).into());
                urls.insert("task_logs_truncated".into(), Value::Bool(true));
            }
        }
        _ => {
            urls.insert("task_logs_base_url".into(), r.console.group_url(r.group).into());
        }
    }
    if let Some(uuid) = r.uuid {
        let stream = format!("manifest/run/{}/{uuid}", r.run_id);
        urls.insert("manifest_log".into(), r.console.stream_url(r.group, &stream).into());
    }
    if r.status == "FAILED" {
        let stream = format!("{run_stream}/engine");
        urls.insert("engine_log".into(), r.console.stream_url(r.group, &stream).into());
    }
    urls
}

/// Task name to URL; a name that several tasks share is kept once per task as
/// `{name}#{taskId}`. A task without a name is listed by its id.
fn task_logs(r: &RunLogs<'_>, tasks: &[Task<'_>]) -> Map<String, Value> {
    let name = |t: &Task<'_>| t.name.unwrap_or(t.id).to_owned();
    let mut uses: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        *uses.entry(name(t)).or_default() += 1;
    }
    let mut out = Map::with_capacity(tasks.len());
    for t in tasks {
        let n = name(t);
        let key = if uses[&n] > 1 { format!("{n}#{}", t.id) } else { n };
        let stream = format!("run/{}/task/{}", r.run_id, t.id);
        out.insert(key, r.console.stream_url(r.group, &stream).into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EU: &str = "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fomics$252FWorkflowLog";

    #[test]
    fn spec_example_url() {
        let c = Console::from_arn("arn:aws:omics:eu-west-1:111122223333:run/4417021").unwrap();
        assert_eq!(c.stream_url(DEFAULT_LOG_GROUP, "run/4417021"), format!("{EU}/log-events/run$252F4417021"));
        assert_eq!(c.group_url(DEFAULT_LOG_GROUP), EU);
    }

    #[test]
    fn partitions_have_their_own_console() {
        let cn = Console::from_arn("arn:aws-cn:omics:cn-north-1:1:run/1").unwrap();
        assert!(
            cn.group_url("/g")
                .starts_with("https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1#")
        );
        let gov = Console::from_arn("arn:aws-us-gov:omics:us-gov-west-1:1:run/1").unwrap();
        assert!(gov.group_url("/g").starts_with("https://us-gov-west-1.console.amazonaws-us-gov.com/"));
        assert_eq!(Console::from_arn("not-an-arn"), None);
        assert_eq!(Console::from_arn("arn:aws:omics::1:run/1"), None);
    }

    #[test]
    fn other_characters_use_the_same_double_encoding() {
        assert_eq!(encode("a b#é"), "a$2520b$2523$25C3$25A9");
        assert_eq!(encode("A-z_0.9~"), "A-z_0.9~");
    }

    #[test]
    fn shared_task_names_get_their_ids_and_missing_tasks_give_the_base_url() {
        let c = Console::new("aws", "eu-west-1");
        let tasks = [
            Task { id: "11", name: Some("align") },
            Task { id: "12", name: Some("align") },
            Task { id: "13", name: Some("call") },
            Task { id: "14", name: None },
        ];
        let mut r = RunLogs {
            console: &c,
            group: DEFAULT_LOG_GROUP,
            run_id: "9",
            status: "FAILED",
            uuid: Some("u-1"),
            tasks: Some(&tasks),
            truncated: false,
        };
        let urls = log_urls(&r);
        let keys: Vec<_> = urls.keys().cloned().collect();
        assert_eq!(keys, ["run_log", "task_logs", "manifest_log", "engine_log"]);
        let task_keys: Vec<_> = urls["task_logs"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(task_keys, ["align#11", "align#12", "call", "14"]);
        assert_eq!(urls["task_logs"]["call"], format!("{EU}/log-events/run$252F9$252Ftask$252F13"));
        assert_eq!(urls["manifest_log"], format!("{EU}/log-events/manifest$252Frun$252F9$252Fu-1"));
        assert_eq!(urls["engine_log"], format!("{EU}/log-events/run$252F9$252Fengine"));

        r.tasks = Some(&[]);
        r.status = "COMPLETED";
        r.uuid = None;
        let urls = log_urls(&r);
        let keys: Vec<_> = urls.keys().cloned().collect();
        assert_eq!(keys, ["run_log", "task_logs_base_url"]);
        assert_eq!(urls["task_logs_base_url"], EU);
    }

    #[test]
    fn large_runs_list_failed_tasks_first_then_the_others_up_to_the_bound() {
        let ids: Vec<String> = (0..1500).map(|i| i.to_string()).collect();
        let task = |i: usize| Task { id: &ids[i], name: Some("shard") };
        let first: Vec<Task<'_>> = (0..1000).map(task).collect();
        let failed: Vec<Task<'_>> = [3, 1200, 1400].into_iter().map(task).collect();
        let (kept, truncated) = bounded(first, failed, true);
        assert!(truncated);
        assert_eq!(kept.len(), TASK_LOGS_MAX);
        let head: Vec<&str> = kept.iter().take(5).map(|t| t.id).collect();
        assert_eq!(head, ["3", "1200", "1400", "0", "1"], "failed first, each task once");
        assert_eq!(kept.last().unwrap().id, "997", "3 failed + 997 others (3 is among both)");

        let small: Vec<Task<'_>> = (0..10).map(task).collect();
        let (kept, truncated) = bounded(small, vec![], false);
        assert_eq!((kept.len(), truncated), (10, false));

        let c = Console::new("aws", "eu-west-1");
        let tasks: Vec<Task<'_>> = (0..2).map(task).collect();
        let r = RunLogs {
            console: &c,
            group: DEFAULT_LOG_GROUP,
            run_id: "9",
            status: "COMPLETED",
            uuid: None,
            tasks: Some(&tasks),
            truncated: true,
        };
        let keys: Vec<_> = log_urls(&r).keys().cloned().collect();
        assert_eq!(keys, ["run_log", "task_logs", "task_logs_base_url", "task_logs_truncated"]);
        let task_keys: Vec<_> = log_urls(&r)["task_logs"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(task_keys, ["shard#0", "shard#1"], "names are decided over the entries kept");
    }
}
