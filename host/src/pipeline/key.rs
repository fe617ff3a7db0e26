//! The archive key (behaviour §6): `{prefix}/event_{YYYYMMDD_HHMMSS}_{id}.json`, or with
//! `ARCHIVE_LAYOUT=dated` `{prefix}/year=YYYY/month=MM/day=DD/event_{YYYYMMDD_HHMMSS}_{id}.json`.

use std::time::SystemTime;

pub use crate::config::ArchiveTarget;
use crate::config::Layout;
use crate::sandbox::ArchiveKey;

impl ArchiveTarget {
    /// The object key for an outcome's key parts: the event's UTC time and id, or else the
    /// current time and a fresh UUID v4. The guest is not trusted with the key's shape: a
    /// part that is not `YYYYMMDD_HHMMSS`, or not an id of letters, digits, `-`, `_` and `.`
    /// (at most 128), is replaced as if it were missing.
    pub fn key(&self, parts: &ArchiveKey, now: SystemTime) -> String {
        let timestamp = parts.timestamp.clone().filter(|t| valid_timestamp(t)).unwrap_or_else(|| compact_utc(now));
        let id = parts.id.clone().filter(|i| valid_id(i)).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let name = format!("event_{timestamp}_{id}.json");
        let folder = match self.layout {
            Layout::Flat => self.prefix.clone(),
            Layout::Dated => self.under_prefix(&partitions(&timestamp)),
        };
        if folder.is_empty() { name } else { format!("{folder}/{name}") }
    }

    fn under_prefix(&self, path: &str) -> String {
        if self.prefix.is_empty() { path.to_owned() } else { format!("{}/{path}", self.prefix) }
    }

    /// `s3://bucket/key`.
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The folder of an event's captured inputs (`CAPTURE_INPUTS`), given its archive key:
    /// `{prefix}/{YYYY}/{MM}/{DD}/event_{YYYYMMDD_HHMMSS}_{id}`, dated like the archive key
    /// (`{prefix}/year=YYYY/month=MM/day=DD/event_...` when the archive is dated).
    pub fn capture_folder(&self, archive_key: &str) -> String {
        let name = archive_key.rsplit('/').next().unwrap_or(archive_key);
        let stem = name.strip_suffix(".json").unwrap_or(name);
        // event_YYYYMMDD_...
        let date = stem.get(6..14).filter(|d| d.bytes().all(|b| b.is_ascii_digit())).unwrap_or("00000000");
        let dated = match self.layout {
            Layout::Flat => format!("{}/{}/{}", &date[0..4], &date[4..6], &date[6..8]),
            Layout::Dated => partitions(date),
        };
        self.under_prefix(&format!("{dated}/{stem}"))
    }
}

/// `year=YYYY/month=MM/day=DD` of a `YYYYMMDD...` timestamp (already checked).
fn partitions(timestamp: &str) -> String {
    format!("year={}/month={}/day={}", &timestamp[0..4], &timestamp[4..6], &timestamp[6..8])
}

/// `YYYYMMDD_HHMMSS`.
fn valid_timestamp(t: &str) -> bool {
    t.len() == 15 && t.bytes().enumerate().all(|(i, b)| if i == 8 { b == b'_' } else { b.is_ascii_digit() })
}

/// One path segment of plain characters.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `YYYYMMDD_HHMMSS` in UTC.
fn compact_utc(t: SystemTime) -> String {
    let iso = aws_sdk_s3::primitives::DateTime::from(t)
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .expect("the current time is representable");
    // 2026-11-29T14:05:09Z (a fraction may follow the seconds)
    format!("{}{}{}_{}{}{}", &iso[0..4], &iso[5..7], &iso[8..10], &iso[11..13], &iso[14..16], &iso[17..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_inputs_are_filed_by_the_archive_keys_date() {
        let t = ArchiveTarget { bucket: "cases".into(), prefix: "real".into(), layout: Layout::Flat };
        assert_eq!(
            t.capture_folder("omics-run-events/event_20260302_134512_e-1.json"),
            "real/2026/03/02/event_20260302_134512_e-1"
        );
        let bare = ArchiveTarget { bucket: "cases".into(), prefix: String::new(), layout: Layout::Flat };
        assert_eq!(bare.capture_folder("event_20261130_000000_x.json"), "2026/11/30/event_20261130_000000_x");
    }

    #[test]
    fn key_uses_event_parts_and_prefix() {
        let t = ArchiveTarget { bucket: "b".into(), prefix: "omics-run-events".into(), layout: Layout::Flat };
        let parts = ArchiveKey { timestamp: Some("20260302_140509".into()), id: Some("e-1".into()) };
        assert_eq!(t.key(&parts, SystemTime::UNIX_EPOCH), "omics-run-events/event_20260302_140509_e-1.json");
        let bare = ArchiveTarget { bucket: "b".into(), prefix: String::new(), layout: Layout::Flat };
        assert_eq!(bare.key(&parts, SystemTime::UNIX_EPOCH), "event_20260302_140509_e-1.json");
    }

    #[test]
    fn a_dated_key_is_filed_by_the_events_utc_day() {
        let t = ArchiveTarget { bucket: "b".into(), prefix: "omics-run-events".into(), layout: Layout::Dated };
        let parts = ArchiveKey { timestamp: Some("20260302_140509".into()), id: Some("e-1".into()) };
        let key = t.key(&parts, SystemTime::UNIX_EPOCH);
        assert_eq!(key, "omics-run-events/year=2026/month=03/day=02/event_20260302_140509_e-1.json");
        assert_eq!(t.key(&parts, SystemTime::now()), key, "a retried event maps to the same key");
        let bare = ArchiveTarget { bucket: "b".into(), prefix: String::new(), layout: Layout::Dated };
        assert_eq!(
            bare.key(&parts, SystemTime::UNIX_EPOCH),
            "year=2026/month=03/day=02/event_20260302_140509_e-1.json"
        );
        // A timestamp of the wrong shape: the current time's day, as for the flat key.
        let odd = ArchiveKey { timestamp: Some("x".into()), id: Some("e-2".into()) };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_342_399); // 2026-12-03T23:59:59Z
        assert_eq!(t.key(&odd, at), "omics-run-events/year=2026/month=12/day=03/event_20261203_235959_e-2.json");
        // Captured cases follow.
        let cases = ArchiveTarget { bucket: "c".into(), prefix: "real".into(), layout: Layout::Dated };
        assert_eq!(cases.capture_folder(&key), "real/year=2026/month=03/day=02/event_20260302_140509_e-1");
    }

    #[test]
    fn key_parts_of_the_wrong_shape_are_not_trusted() {
        let t = ArchiveTarget { bucket: "b".into(), prefix: "p".into(), layout: Layout::Flat };
        for (ts, id) in [("2026-03-02", "e-1"), ("20260302_140509", "../../etc"), ("20260302_140509", "a/b"), ("x", "")]
        {
            let key = t.key(&ArchiveKey { timestamp: Some(ts.into()), id: Some(id.into()) }, SystemTime::UNIX_EPOCH);
            let rest = key.strip_prefix("p/event_").unwrap();
            assert!(!rest.contains('/'), "{key}");
            assert!(rest.ends_with(".json"), "{key}");
            if ts == "2026-03-02" || ts == "x" {
                assert!(rest.starts_with("19700101_000000_"), "{key}");
            }
        }
    }

    #[test]
    fn key_falls_back_to_now_and_a_fresh_uuid() {
        let t = ArchiveTarget { bucket: "b".into(), prefix: "p".into(), layout: Layout::Flat };
        let parts = ArchiveKey { timestamp: None, id: None };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_772_460_309_250);
        let key = t.key(&parts, at);
        assert!(key.starts_with("p/event_20260302_140509_"), "{key}");
        let id = key.trim_start_matches("p/event_20260302_140509_").trim_end_matches(".json");
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(t.key(&parts, at), key, "each fallback UUID is fresh");
    }
}
