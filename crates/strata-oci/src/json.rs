//! Canonical JSON: the exact bytes strata writes for configs, manifests and indexes.
//!
//! oci-spec keeps maps in `HashMap`s, so serialising its types directly gives
//! different key orders from run to run. Going through `serde_json::Value`
//! (whose maps are `BTreeMap`s, as long as nothing enables serde_json's
//! `preserve_order`) sorts every object's keys; output is compact.

use serde::Serialize;

pub fn to_canonical_vec<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let value = serde_json::to_value(value)?;
    serde_json::to_vec(&value)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn keys_are_sorted_whatever_the_map() {
        let mut map = HashMap::new();
        for key in ["zeta", "alpha", "mu", "beta", "omega"] {
            map.insert(key, 1);
        }
        let bytes = super::to_canonical_vec(&map).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"alpha":1,"beta":1,"mu":1,"omega":1,"zeta":1}"#
        );
    }
}
