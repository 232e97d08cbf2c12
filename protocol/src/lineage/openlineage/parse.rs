//! Parsing an event's bytes into a tree ([`Json`]) without the facets nobody
//! reads.
//!
//! Producers attach facets the mapping never looks at, and they can be most
//! of an event: a Spark event's logical plan, an Airflow task's whole
//! configuration. Those are still checked to be valid JSON, but skipped
//! instead of built into a tree and dropped again, which was about half the
//! cost of mapping an event.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::facets::READ_FACETS;
use super::tree::{Entries, Json};

/// The keys whose objects hold facets.
const FACET_MAPS: [&str; 3] = ["facets", "inputFacets", "outputFacets"];

/// `json` as a tree, without the facets not in [`READ_FACETS`].
pub(super) fn event_tree(json: &[u8]) -> Result<Json<'_>, serde_json::Error> {
    let mut parser = serde_json::Deserializer::from_slice(json);
    let value = Pruned { facets: false }.deserialize(&mut parser)?;
    parser.end()?;
    Ok(value)
}

/// A value to build; `facets` when it is an object of facets.
#[derive(Clone, Copy)]
struct Pruned {
    facets: bool,
}

impl<'de> DeserializeSeed<'de> for Pruned {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        // As serde_json's tree: a number it cannot hold reads as null.
        Ok(Number::from_f64(v).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(Pruned { facets: false })? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut object = Entries::default();
        while let Some(key) = map.next_key_seed(Key)? {
            if self.facets && !READ_FACETS.contains(&key.as_ref()) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let facets = FACET_MAPS.contains(&key.as_ref());
            let value = map.next_value_seed(Pruned { facets })?;
            object.push(key, value);
        }
        Ok(Json::Object(object))
    }
}

/// An object key, borrowed from the input when it holds no escapes (serde's
/// own `Cow<str>` always copies).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    #[test]
    fn unread_facets_are_skipped_and_everything_else_kept() {
        let json = br#"{"run": {"runId": "r", "facets": {"spark.logicalPlan": {"plan": [1, 2]},
            "errorMessage": {"message": "boom"}}},
            "outputs": [{"name": "t", "facets": {"schema": {"fields": []}, "x": 1},
                "outputFacets": {"outputStatistics": {"rowCount": 3}, "y": {}}}],
            "n": -1.5, "ok": true, "none": null}"#;
        let pruned = event_tree(json).unwrap().to_value();
        let mut full: Value = serde_json::from_slice(json).unwrap();
        full["run"]["facets"]
            .as_object_mut()
            .unwrap()
            .remove("spark.logicalPlan");
        full["outputs"][0]["facets"]
            .as_object_mut()
            .unwrap()
            .remove("x");
        full["outputs"][0]["outputFacets"]
            .as_object_mut()
            .unwrap()
            .remove("y");
        assert_eq!(pruned, full);
    }

    /// `value` with the unread facets removed, the slow way.
    fn without_unread_facets(value: &mut Value, facets: bool) {
        match value {
            Value::Object(map) => {
                if facets {
                    map.retain(|k, _| READ_FACETS.contains(&k.as_str()));
                }
                for (k, v) in map.iter_mut() {
                    without_unread_facets(v, FACET_MAPS.contains(&k.as_str()));
                }
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|v| without_unread_facets(v, false)),
            _ => {}
        }
    }

    #[test]
    fn every_corpus_event_parses_to_the_full_tree_less_the_unread_facets() {
        let corpus = include_str!("../../../tests/corpora/openlineage/all-events.jsonl");
        let mut skipped = 0;
        for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
            let pruned = event_tree(line.as_bytes()).unwrap().to_value();
            let mut full: Value = serde_json::from_str(line).unwrap();
            let full_len = full.to_string().len();
            without_unread_facets(&mut full, false);
            assert_eq!(pruned, full);
            skipped += full_len - pruned.to_string().len();
        }
        assert!(skipped > 0, "the corpus has facets nobody reads");
    }

    /// Any JSON, with keys that name facet maps and facets, read or not.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z\"\\\\]{0,4}".prop_map(Value::from),
        ];
        let key = prop_oneof![
            Just("facets".to_string()),
            Just("inputFacets".to_string()),
            Just("outputFacets".to_string()),
            Just("schema".to_string()),
            Just("sql".to_string()),
            Just("spark.logicalPlan".to_string()),
            "[a-z\"\\\\]{1,3}",
        ];
        leaf.prop_recursive(5, 64, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_parses_to_the_full_tree_less_the_unread_facets(value in any_json()) {
            let pruned = event_tree(value.to_string().as_bytes()).unwrap().to_value();
            let mut full = value;
            without_unread_facets(&mut full, false);
            prop_assert_eq!(pruned, full);
        }
    }

    #[test]
    fn deep_nesting_never_overflows_the_stack() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        // Built into the tree: refused at serde_json's depth limit.
        for json in [
            deep.clone(),
            format!(r#"{{"run": {{"facets": {{"sql": {deep}}}}}}}"#),
        ] {
            let e = event_tree(json.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("recursion"), "{e}");
        }
        // Skipped: checked without recursion, and dropped.
        let skipped = format!(r#"{{"run": {{"facets": {{"spark.logicalPlan": {deep}}}}}}}"#);
        assert_eq!(
            event_tree(skipped.as_bytes()).unwrap().to_value(),
            serde_json::json!({"run": {"facets": {}}})
        );
        let unbalanced = format!(
            r#"{{"run": {{"facets": {{"x": {}}}}}}}"#,
            "[".repeat(100_000)
        );
        assert!(event_tree(unbalanced.as_bytes()).is_err());
    }

    #[test]
    fn a_key_written_twice_keeps_its_last_value_as_in_serde_json() {
        let json = br#"{"a": 1, "b": {"c": "\u0041", "c": "x"}, "a": [2]}"#;
        let full: Value = serde_json::from_slice(json).unwrap();
        assert_eq!(event_tree(json).unwrap().to_value(), full);
    }

    #[test]
    fn invalid_json_is_refused_even_inside_a_skipped_facet() {
        for bad in [
            &br#"{"run": {"facets": {"other": {"a": }}}}"#[..],
            br#"{"run": {}} trailing"#,
            br#"{"a": [1, 2"#,
        ] {
            assert!(event_tree(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
