//! The physical limit of a cold start on this runtime: a bare `lambda_runtime` function
//! (tokio, serde_json) that echoes its event. `bench/run.sh` measures the function's cold
//! start beside this one's, in the same run.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<Value, Error>(event.payload) })).await
}
