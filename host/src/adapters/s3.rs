//! S3: reading objects (outputs.json, guest components) and the data lake, written with
//! conditional puts (`If-None-Match: *`), AES256 and JSON.

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::aws::sort;
use super::lazy::Lazy;
use crate::error::{ArchiveError, AwsError, FetchError};
use crate::ports::{Archive, Archived};

/// Why an object could not be read.
#[derive(Debug)]
pub enum GetError {
    NotFound,
    Fetch(FetchError),
}

impl std::fmt::Display for GetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetError::NotFound => f.write_str("no such object"),
            GetError::Fetch(e) => e.fmt(f),
        }
    }
}

/// Reads a whole object: its bytes and its ETag.
pub async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<(Vec<u8>, Option<String>), GetError> {
    match get_object_if_changed(s3, bucket, key, version_id, None).await? {
        Some(found) => Ok(found),
        None => unreachable!("an unconditional GET is never answered 304"),
    }
}

/// Reads a whole object unless its ETag is still `etag`: `Ok(None)` when unchanged (304),
/// else the bytes and the object's current ETag.
pub async fn get_object_if_changed(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    etag: Option<&str>,
) -> Result<Option<(Vec<u8>, Option<String>)>, GetError> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .set_if_none_match(etag.map(str::to_owned))
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 304 => return Ok(None),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Err(GetError::NotFound),
        Err(e) => return Err(GetError::Fetch(sort("GetObject", e))),
    };
    let etag = out.e_tag().map(str::to_owned);
    let body = out.body.collect().await.map_err(|e| {
        GetError::Fetch(FetchError::Failed(AwsError { call: "GetObject", reason: format!("reading the body: {e}") }))
    })?;
    Ok(Some((body.into_bytes().to_vec(), etag)))
}

/// Writes (or replaces) a small JSON object, AES256: the reconciliation's ledger.
pub async fn put_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .content_type("application/json")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("PutObject: {}", DisplayErrorContext(&e)))
}

/// `s3://bucket/key` into its parts.
pub fn parse_uri(uri: &str) -> Option<(&str, &str)> {
    let (bucket, key) = uri.strip_prefix("s3://")?.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

/// The data lake in S3.
#[derive(Clone)]
pub struct S3Archive {
    pub s3: Lazy<aws_sdk_s3::Client>,
}

impl Archive for S3Archive {
    async fn put_new(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<Archived, ArchiveError> {
        let result = self
            .s3
            .get()
            .await
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .if_none_match("*")
            .send()
            .await;
        match result {
            Ok(_) => Ok(Archived::Written),
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => Ok(Archived::AlreadyThere),
            Err(e) => Err(ArchiveError {
                uri: format!("s3://{bucket}/{key}"),
                reason: format!("PutObject: {}", DisplayErrorContext(&e)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris() {
        assert_eq!(parse_uri("s3://b/k/o.json"), Some(("b", "k/o.json")));
        assert_eq!(parse_uri("s3://b/"), None);
        assert_eq!(parse_uri("https://b/k"), None);
    }
}
