//! One-level flattening, compatible with the data lake the Python processor wrote
//! (behaviour §2). The flattened view borrows the parsed event: no value is copied.

#[allow(unused_imports)]
use crate::prelude::*;

use alloc::borrow::Cow;

use foldhash::fast::FixedState;
use indexmap::IndexMap;
use serde_json::{Map, Value};

/// The flattened event: keys in order of first appearance, each with the value it ends up
/// with.
pub type Flat<'a> = IndexMap<Cow<'a, str>, &'a Value, FixedState>;

/// Flattens `top` one level:
/// - an object value's entries are merged in unprefixed;
/// - an array value's item `i` contributes, when it is an object, each entry as
///   `{subkey}_{i}`, and otherwise itself as `{key}_{i}`;
/// - scalars are copied.
///
/// A later key of the same name overwrites the earlier value and keeps the earlier position.
/// Values copied out of an object or an array are taken as they are.
pub fn flatten(top: &Map<String, Value>) -> Flat<'_> {
    let mut out = Flat::with_capacity_and_hasher(top.len() + 16, FixedState::default());
    for (key, value) in top {
        match value {
            Value::Object(entries) => {
                for (sub, v) in entries {
                    out.insert(Cow::Borrowed(sub.as_str()), v);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Object(entries) => {
                            for (sub, v) in entries {
                                out.insert(Cow::Owned(format!("{sub}_{i}")), v);
                            }
                        }
                        other => {
                            out.insert(Cow::Owned(format!("{key}_{i}")), other);
                        }
                    }
                }
            }
            scalar => {
                out.insert(Cow::Borrowed(key.as_str()), scalar);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flat(v: Value) -> String {
        let Value::Object(m) = v else { panic!("not an object") };
        let copy: Map<String, Value> = flatten(&m).into_iter().map(|(k, v)| (k.into_owned(), v.clone())).collect();
        serde_json::to_string(&copy).unwrap()
    }

    #[test]
    fn spec_example() {
        assert_eq!(flat(json!({"a":[{"k":1},{"k":2}],"b":[],"c":{},"d":[[1,2]]})), r#"{"k_0":1,"k_1":2,"d_0":[1,2]}"#);
    }

    #[test]
    fn detail_is_merged_unprefixed_and_resources_are_indexed() {
        let event = json!({"version":"0","id":"e1","source":"aws.omics",
            "resources":["arn:1","arn:2"],
            "detail":{"status":"RUNNING","runId":"1","nested":{"x":[]}}});
        assert_eq!(
            flat(event),
            r#"{"version":"0","id":"e1","source":"aws.omics","resources_0":"arn:1","resources_1":"arn:2","status":"RUNNING","runId":"1","nested":{"x":[]}}"#
        );
    }

    #[test]
    fn later_key_overwrites_value_but_keeps_first_position() {
        assert_eq!(flat(json!({"status":"A","x":1,"detail":{"status":"B"}})), r#"{"status":"B","x":1}"#);
    }

    #[test]
    fn flattening_is_idempotent_on_events() {
        let event = json!({"version":"0","id":"e1","detail-type":"Run Status Change",
            "resources":["arn:1"],"detail":{"status":"RUNNING","runId":"1"}});
        let once: Value = serde_json::from_str(&flat(event)).unwrap();
        assert_eq!(flat(once.clone()), serde_json::to_string(&once).unwrap());
    }

    #[test]
    fn empty_values_inside_copied_objects_are_kept() {
        assert_eq!(flat(json!({"detail":{"e":[],"o":{}},"a":[{}]})), r#"{"e":[],"o":{}}"#);
    }
}
