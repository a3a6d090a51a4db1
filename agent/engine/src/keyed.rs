//! A read-only map from short string keys (asset ids) to values, for the
//! look-ups the engine makes for every lot, member and trade of every
//! account. A `BTreeMap<&str, _>` compares the key with several others on
//! each look-up; this finds the slot by a hash of the key and compares once.
//! Iteration is in key order, as a `BTreeMap`'s.

/// Keys in order, their values, and an open-addressing table of positions.
#[derive(Debug, Clone)]
pub(crate) struct Keyed<'a, V> {
    keys: Vec<&'a str>,
    values: Vec<V>,
    /// Positions into `keys`, `EMPTY` where free; a power of two long.
    slots: Vec<u32>,
}

const EMPTY: u32 = u32::MAX;

/// FNV-1a: a few instructions per byte, and asset ids are a few bytes.
fn hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Whether two short keys are equal, compared in line (a call to `memcmp`
/// costs more than the comparison of a few bytes).
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// `items` grouped by `key`, groups in the order of their first item and
/// items in input order. Items of one key usually follow each other (the
/// accounts of a household, its recent trades): the last group is checked
/// before the index of groups.
pub(crate) fn group<'a, T>(items: impl IntoIterator<Item = T>, key: impl Fn(&T) -> &'a str) -> Vec<(&'a str, Vec<T>)> {
    let mut groups: Vec<(&'a str, Vec<T>)> = Vec::new();
    let mut index: std::collections::BTreeMap<&'a str, usize> = std::collections::BTreeMap::new();
    for item in items {
        let k = key(&item);
        if let Some((last, members)) = groups.last_mut()
            && same(last, k)
        {
            members.push(item);
            continue;
        }
        match index.entry(k) {
            std::collections::btree_map::Entry::Occupied(at) => groups[*at.get()].1.push(item),
            std::collections::btree_map::Entry::Vacant(at) => {
                at.insert(groups.len());
                // Room for a few items (a household's accounts) without regrowing.
                let mut members = Vec::with_capacity(4);
                members.push(item);
                groups.push((k, members));
            }
        }
    }
    groups
}

impl<'a, V> Keyed<'a, V> {
    /// The map of `entries`, which must be in key order without duplicates
    /// (as a `BTreeMap` iterates).
    pub fn from_sorted(entries: impl IntoIterator<Item = (&'a str, V)>) -> Self {
        let (keys, values): (Vec<&'a str>, Vec<V>) = entries.into_iter().unzip();
        debug_assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys in order, once each");
        let size = (keys.len() * 2).next_power_of_two().max(8);
        let mut slots = vec![EMPTY; size];
        for (at, key) in keys.iter().enumerate() {
            let mut i = hash(key) as usize & (size - 1);
            while slots[i] != EMPTY {
                i = (i + 1) & (size - 1);
            }
            slots[i] = at as u32;
        }
        Self { keys, values, slots }
    }

    /// The key's position in key order.
    pub fn position(&self, key: &str) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut i = hash(key) as usize & mask;
        loop {
            let at = self.slots[i];
            if at == EMPTY {
                return None;
            }
            if same(self.keys[at as usize], key) {
                return Some(at as usize);
            }
            i = (i + 1) & mask;
        }
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.position(key).map(|at| &self.values[at])
    }

    /// The key at position `at` in key order.
    pub fn key(&self, at: usize) -> &'a str {
        self.keys[at]
    }

    /// The value at position `at` in key order.
    pub fn at(&self, at: usize) -> &V {
        &self.values[at]
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Values in key order.
    pub fn values(&self) -> std::slice::Iter<'_, V> {
        self.values.iter()
    }
}

impl<V> std::ops::Index<&str> for Keyed<'_, V> {
    type Output = V;

    fn index(&self, key: &str) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no entry for {key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        #[test]
        fn groups_as_a_btreemap_of_lists_does(items in prop::collection::vec(("[a-c]{1,2}", 0..1000u32), 0..60)) {
            let mut model: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
            for (k, v) in &items {
                model.entry(k.as_str()).or_default().push(*v);
            }
            let grouped = group(items.iter(), |(k, _)| k.as_str());
            // Groups in the order of their first item.
            let firsts: Vec<&str> = grouped.iter().map(|(k, _)| *k).collect();
            let mut expected: Vec<&str> = Vec::new();
            for (k, _) in &items {
                if !expected.contains(&k.as_str()) {
                    expected.push(k.as_str());
                }
            }
            prop_assert_eq!(firsts, expected);
            let as_map: BTreeMap<&str, Vec<u32>> = grouped.into_iter().map(|(k, g)| (k, g.into_iter().map(|(_, v)| *v).collect())).collect();
            prop_assert_eq!(as_map, model);
        }

        #[test]
        fn answers_as_a_btreemap_does(keys in prop::collection::btree_set("[A-Z0-9]{1,6}", 0..60), probes in prop::collection::vec("[A-Z0-9]{1,6}", 0..60)) {
            let model: BTreeMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
            let keyed = Keyed::from_sorted(model.iter().map(|(k, v)| (*k, *v)));
            for k in keys.iter().chain(&probes) {
                prop_assert_eq!(keyed.get(k), model.get(k.as_str()));
            }
            prop_assert!(keyed.values().eq(model.values()));
            for (at, (k, v)) in model.iter().enumerate() {
                prop_assert_eq!((keyed.key(at), keyed.at(at), keyed.position(k)), (*k, v, Some(at)));
            }
        }
    }
}
