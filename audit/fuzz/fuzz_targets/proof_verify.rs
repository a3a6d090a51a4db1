//! Merkle proofs: `verify_inclusion` and `verify_consistency` on arbitrary
//! sizes, indices, roots and proofs answer without panicking; proofs that a
//! `MerkleStore` built from fuzzer-chosen leaves gives always verify, agree
//! with `MerkleTree` and `root_of`, and fail once any bit is changed.

#![no_main]

use ballast_audit::{Hash, MerkleStore, MerkleTree, leaf_hash, root_of, verify_consistency, verify_inclusion};
use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};

/// The largest tree built (a bound on the work per input).
const MAX_LEAVES: u64 = 300;

/// The longest arbitrary proof tried: twice the depth of a 2^64-leaf tree,
/// and a few more.
const MAX_PROOF_LEN: usize = 140;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = generated_proofs_verify(&mut u);
    let _ = arbitrary_proofs_answer(&mut u);
});

fn generated_proofs_verify(u: &mut Unstructured) -> Result<()> {
    let salt: u64 = u.arbitrary()?;
    let n = u.int_in_range(1..=MAX_LEAVES)?;
    // Distinct leaves: the salt and the position, hashed.
    let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&[salt.to_be_bytes(), i.to_be_bytes()].concat())).collect();
    let mut store = MerkleStore::new();
    let mut tree = MerkleTree::new();
    for leaf in &leaves {
        store.push(*leaf);
        tree.push(*leaf);
    }
    assert_eq!(store.size(), n);
    assert_eq!(store.root(), tree.root());
    assert_eq!(store.root(), root_of(&leaves));

    let size = u.int_in_range(1..=n)?;
    let index = u.int_in_range(0..=size - 1)?;
    let root = store.root_at(size).expect("size within the store");
    assert_eq!(root, root_of(&leaves[..size as usize]));
    let leaf = leaves[index as usize];
    let proof = store.inclusion_proof(index, size).expect("index and size within the store");
    assert!(verify_inclusion(&leaf, index, size, &proof, &root), "inclusion of {index} in {size}");
    assert!(!verify_inclusion(&leaf, index ^ 1, size, &proof, &root), "inclusion of {index} passed as {}", index ^ 1);
    if !proof.is_empty() {
        let bit = u.choose_index(proof.len() * 256)?;
        let mut bad = proof.clone();
        bad[bit / 256][bit % 256 / 8] ^= 1 << (bit % 8);
        assert!(!verify_inclusion(&leaf, index, size, &bad, &root), "a changed inclusion proof passed");
    }

    let old = u.int_in_range(0..=size)?;
    let old_root = store.root_at(old).expect("old within the store");
    let consistency = store.consistency_proof(old, size).expect("old <= size within the store");
    assert!(verify_consistency(old, size, &old_root, &root, &consistency), "consistency {old} to {size}");
    if !consistency.is_empty() {
        let bit = u.choose_index(consistency.len() * 256)?;
        let mut bad = consistency.clone();
        bad[bit / 256][bit % 256 / 8] ^= 1 << (bit % 8);
        assert!(!verify_consistency(old, size, &old_root, &root, &bad), "a changed consistency proof passed");
    }
    if old < size {
        let other = leaf_hash(b"not the old root");
        assert!(!verify_consistency(old, size, &other, &root, &consistency), "a wrong old root passed");
    }
    Ok(())
}

fn arbitrary_proofs_answer(u: &mut Unstructured) -> Result<()> {
    let (index, size, old, new): (u64, u64, u64, u64) = u.arbitrary()?;
    let (leaf, root, old_root): (Hash, Hash, Hash) = u.arbitrary()?;
    let len = u.int_in_range(0..=MAX_PROOF_LEN)?;
    let proof: Vec<Hash> = (0..len).map(|_| u.arbitrary()).collect::<Result<_>>()?;
    let included = verify_inclusion(&leaf, index, size, &proof, &root);
    assert!(!included || index < size);
    let consistent = verify_consistency(old, new, &old_root, &root, &proof);
    assert!(!consistent || old <= new);
    Ok(())
}
