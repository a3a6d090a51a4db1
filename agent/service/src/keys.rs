//! The agent's two keys, kept apart: the EVM key that settles and anchors,
//! and the Ed25519 seed that signs audit records. Each comes from a file
//! that only its owner may read (a group- or world-readable file is
//! refused: `chmod 600` it) or from an environment variable, as hex.
//! Anvil's well-known development keys are refused on every chain but
//! Anvil's, so a devnet configuration can never settle real money.

use std::{fmt, path::PathBuf};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Anvil's chain id.
pub const ANVIL_CHAIN_ID: u64 = ballast_chain::devnet::ANVIL_CHAIN_ID;

/// The addresses of Anvil's ten default development keys (from the
/// public "test test … junk" mnemonic): anyone can sign for them.
pub const ANVIL_DEV_ADDRESSES: [&str; 10] = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
];

/// Where a key comes from: `file:PATH` or `env:VARIABLE`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum KeySource {
    File(PathBuf),
    Env(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "file:{}", p.display()),
            KeySource::Env(v) => write!(f, "env:{v}"),
        }
    }
}

impl TryFrom<String> for KeySource {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        match s.split_once(':') {
            Some(("file", p)) if !p.is_empty() => Ok(KeySource::File(PathBuf::from(p))),
            Some(("env", v)) if !v.is_empty() => Ok(KeySource::Env(v.to_string())),
            _ => Err(format!("{s:?} is neither \"file:PATH\" nor \"env:VARIABLE\"")),
        }
    }
}

impl KeySource {
    /// The 32 secret bytes, read as hex (an optional `0x`, surrounding
    /// whitespace ignored).
    pub fn read_secret(&self) -> Result<[u8; 32]> {
        let bad = |reason: String| Error::Key { source_name: self.to_string(), reason };
        let text = match self {
            KeySource::File(path) => {
                let meta = std::fs::metadata(path).map_err(|source| Error::Io { op: "reading the key file", path: path.clone(), source })?;
                refuse_shared(&meta).map_err(bad)?;
                std::fs::read_to_string(path).map_err(|source| Error::Io { op: "reading the key file", path: path.clone(), source })?
            }
            KeySource::Env(var) => std::env::var(var).map_err(|_| bad("the variable is not set (or not UTF-8)".into()))?,
        };
        let hex_text = text.trim();
        let hex_text = hex_text.strip_prefix("0x").unwrap_or(hex_text);
        let bytes = hex::decode(hex_text).map_err(|_| bad("not hex".into()))?;
        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad(format!("{} bytes, a key is 32", bytes.len())))
    }

    /// The EVM settler key, refused if it is one of Anvil's development
    /// keys and `chain_id` is not Anvil's.
    pub fn evm_signer(&self, chain_id: u64) -> Result<PrivateKeySigner> {
        let secret = self.read_secret()?;
        let signer = PrivateKeySigner::from_slice(&secret).map_err(|e| Error::Key { source_name: self.to_string(), reason: format!("not a secp256k1 key: {e}") })?;
        refuse_dev_key(signer.address(), chain_id).map_err(|reason| Error::Key { source_name: self.to_string(), reason })?;
        Ok(signer)
    }

    /// The Ed25519 audit signer.
    pub fn audit_signer(&self) -> Result<ballast_audit::Signer> {
        Ok(ballast_audit::Signer::from_seed(&self.read_secret()?))
    }
}

/// Refuses one of Anvil's development keys on any chain but Anvil's.
pub fn refuse_dev_key(address: Address, chain_id: u64) -> std::result::Result<(), String> {
    let known = ANVIL_DEV_ADDRESSES.iter().any(|a| a.parse::<Address>().is_ok_and(|a| a == address));
    if known && chain_id != ANVIL_CHAIN_ID {
        return Err(format!("{address} is one of Anvil's public development keys; refused on chain {chain_id}"));
    }
    Ok(())
}

#[cfg(unix)]
fn refuse_shared(meta: &std::fs::Metadata) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!("the key file is readable by others (mode {mode:03o}); chmod 600 it"));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_shared(_: &std::fs::Metadata) -> std::result::Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const ANVIL_KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn write_key(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> KeySource {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        KeySource::File(path)
    }

    #[test]
    fn key_files_must_be_private_and_hex() {
        let dir = tempfile::tempdir().unwrap();
        let ok = write_key(dir.path(), "ok", &format!("0x{}\n", "11".repeat(32)), 0o600);
        assert_eq!(ok.read_secret().unwrap(), [0x11; 32]);
        for mode in [0o640, 0o604, 0o644] {
            let shared = write_key(dir.path(), "shared", &"11".repeat(32), mode);
            let err = shared.read_secret().unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{mode:o}: {err}");
        }
        let short = write_key(dir.path(), "short", "1122", 0o600);
        assert!(short.read_secret().unwrap_err().to_string().contains("2 bytes, a key is 32"));
        let junk = write_key(dir.path(), "junk", "not a key", 0o400);
        assert!(junk.read_secret().unwrap_err().to_string().contains("not hex"));
        let missing = KeySource::File(dir.path().join("missing"));
        assert!(matches!(missing.read_secret(), Err(Error::Io { .. })));
        assert!(KeySource::Env("BALLAST_TEST_SURELY_UNSET_VARIABLE".into()).read_secret().unwrap_err().to_string().contains("not set"));
    }

    #[test]
    fn anvil_development_keys_are_refused_off_anvil() {
        let dir = tempfile::tempdir().unwrap();
        let anvil = write_key(dir.path(), "anvil", ANVIL_KEY_0, 0o600);
        assert_eq!(anvil.evm_signer(ANVIL_CHAIN_ID).unwrap().address().to_string(), ANVIL_DEV_ADDRESSES[0]);
        let err = anvil.evm_signer(1).unwrap_err().to_string();
        assert!(err.contains("Anvil's public development keys") && err.contains("chain 1"), "{err}");
        let own = write_key(dir.path(), "own", &"42".repeat(32), 0o600);
        assert!(own.evm_signer(1).is_ok());
        for a in ANVIL_DEV_ADDRESSES {
            assert!(refuse_dev_key(a.parse().unwrap(), 8453).is_err(), "{a}");
            assert!(refuse_dev_key(a.parse().unwrap(), ANVIL_CHAIN_ID).is_ok(), "{a}");
        }
    }

    #[test]
    fn sources_parse_and_never_print_secrets() {
        assert_eq!(KeySource::try_from("file:/k".to_string()), Ok(KeySource::File("/k".into())));
        assert_eq!(KeySource::try_from("env:K".to_string()), Ok(KeySource::Env("K".into())));
        for bad in ["K", "file:", "env:", "vault:x"] {
            assert!(KeySource::try_from(bad.to_string()).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let src = write_key(dir.path(), "k", &"ab".repeat(32), 0o600);
        let signer = src.audit_signer().unwrap();
        assert!(!format!("{signer:?} {src:?}").contains("abab"));
    }
}
