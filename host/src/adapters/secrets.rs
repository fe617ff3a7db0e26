//! The callback key from Secrets Manager (`ENV_SECRETS`), read once, in the
//! background from the cold start on (`WesClient::read_key`); the first callback waits for it.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde_json::Value;

use crate::config::ApiKey;
use crate::error::InitError;

/// Reads the callback key: the secret's JSON must have a non-empty string `AUTH_TOKEN`.
pub async fn callback_key(config: &SdkConfig, secret_id: &str) -> Result<ApiKey, InitError> {
    let fail = |what: String| InitError::Secret(format!("the secret {secret_id} (ENV_SECRETS) {what}"));
    let client = aws_sdk_secretsmanager::Client::new(config);
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| fail(format!("cannot be read: {}", DisplayErrorContext(&e))))?;
    let text = out.secret_string().ok_or_else(|| fail("has no string value".into()))?;
    let json: Value = serde_json::from_str(text).map_err(|_| fail("is not a JSON object".into()))?;
    match json.get("AUTH_TOKEN").and_then(Value::as_str) {
        Some(key) if !key.is_empty() => Ok(ApiKey::new(key.to_owned())),
        _ => Err(fail("has no AUTH_TOKEN".into())),
    }
}
