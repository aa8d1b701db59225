//! Ed25519 signatures over label serials, and the set of public keys that makes rotation harmless.
//!
//! The signature is what makes a label unforgeable: anyone holding the public key can check a code
//! offline, and nobody without the private key can mint a new serial or edit a number.
//!
//! What is signed is a short domain-separated byte string, never the URL:
//!
//! ```text
//!   b"suyuan-label-v1\0"  (16 bytes: tag and version, so the key can never be tricked into
//!                          signing something that also means something elsewhere)
//!   key id                (1 byte, 0..=99, the same id as in the serial's first two digits)
//!   serial                (13 ASCII digits, check digit included)
//! ```
//!
//! The host name is deliberately not covered, so that a change of host does not invalidate labels
//! that are already printed and stuck on boxes.
//!
//! Keys have ids ([`KeyId`]). [`VerifyingKeySet`] holds the public keys by id, so that after a rotation
//! labels signed by older keys still verify. Private key bytes never appear in `Debug` output.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore};

use crate::error::Error;
use crate::serial::{KeyId, LabelSerial, SERIAL_DIGITS};

/// Domain-separation tag that starts every signed message (version 1 of the label format).
pub const SIGNATURE_TAG: &[u8; 16] = b"suyuan-label-v1\0";

/// Domain-separation tag of the platform's other signed statement, the anchor of the record chains'
/// heads: its messages can never be taken for a label's (whose tag differs in its first bytes).
pub const ANCHOR_TAG: &[u8; 17] = b"suyuan-anchor-v1\0";

/// Length of the signed message: tag, key id byte, 13 serial digits.
pub const SIGNED_MESSAGE_LEN: usize = SIGNATURE_TAG.len() + 1 + SERIAL_DIGITS;

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_BYTES: usize = 64;

/// The exact bytes that are signed for `serial`.
pub fn signed_message(serial: LabelSerial) -> [u8; SIGNED_MESSAGE_LEN] {
    let mut msg = [0u8; SIGNED_MESSAGE_LEN];
    msg[..SIGNATURE_TAG.len()].copy_from_slice(SIGNATURE_TAG);
    msg[SIGNATURE_TAG.len()] = serial.key_id().get();
    msg[SIGNATURE_TAG.len() + 1..].copy_from_slice(&serial.to_digits());
    msg
}

/// A label's Ed25519 signature (64 bytes). Not secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LabelSignature([u8; SIGNATURE_BYTES]);

impl LabelSignature {
    /// Wraps raw signature bytes (e.g. parsed from a code); validity is checked on verification.
    pub fn from_bytes(bytes: [u8; SIGNATURE_BYTES]) -> Self {
        Self(bytes)
    }

    /// The raw 64 bytes.
    pub fn to_bytes(self) -> [u8; SIGNATURE_BYTES] {
        self.0
    }

    /// The raw 64 bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.0
    }
}

impl fmt::Debug for LabelSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LabelSignature({}…)", hex(&self.0[..8]))
    }
}

/// A private signing key with its id.
///
/// `Debug` shows the id and public key only; the secret is redacted.
pub struct LabelSigningKey {
    id: KeyId,
    key: SigningKey,
}

impl LabelSigningKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate(id: KeyId) -> Self {
        Self::generate_with(id, &mut OsRng)
    }

    /// A fresh random key from `rng` (tests pass a seeded generator; production uses [`Self::generate`]).
    pub fn generate_with<R: CryptoRng + RngCore>(id: KeyId, rng: &mut R) -> Self {
        Self {
            id,
            key: SigningKey::generate(rng),
        }
    }

    /// Restores a key from its 32 secret bytes (as stored in the key file).
    pub fn from_secret_bytes(id: KeyId, secret: &[u8; 32]) -> Self {
        Self {
            id,
            key: SigningKey::from_bytes(secret),
        }
    }

    /// The 32 secret bytes, for writing the owner-only key file. Never log or serve them.
    pub fn to_secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The key's id (the first two digits of every serial it signs).
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The public half, for publishing and verification.
    pub fn verifying_key(&self) -> LabelVerifyingKey {
        LabelVerifyingKey {
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `serial`; the serial must carry this key's id.
    pub fn sign(&self, serial: LabelSerial) -> Result<LabelSignature, Error> {
        if serial.key_id() != self.id {
            return Err(Error::KeyIdMismatch {
                serial_key: serial.key_id(),
                signing_key: self.id,
            });
        }
        Ok(LabelSignature(
            self.key.sign(&signed_message(serial)).to_bytes(),
        ))
    }

    /// Signs an anchor of the record chains: [`ANCHOR_TAG`], this key's id byte, then `statement`.
    pub fn sign_anchor(&self, statement: &[u8]) -> LabelSignature {
        LabelSignature(
            self.key
                .sign(&anchor_message(self.id, statement))
                .to_bytes(),
        )
    }
}

fn anchor_message(id: KeyId, statement: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(ANCHOR_TAG.len() + 1 + statement.len());
    msg.extend_from_slice(ANCHOR_TAG);
    msg.push(id.get());
    msg.extend_from_slice(statement);
    msg
}

impl fmt::Debug for LabelSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabelSigningKey")
            .field("id", &self.id)
            .field("public", &hex(self.key.verifying_key().as_bytes()))
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A public key with its id, as published at the well-known URL.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LabelVerifyingKey {
    id: KeyId,
    key: VerifyingKey,
}

impl LabelVerifyingKey {
    /// Parses a published public key; fails if the bytes are not a valid Ed25519 point.
    pub fn from_bytes(id: KeyId, bytes: &[u8; 32]) -> Result<Self, Error> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| Error::InvalidPublicKey(id))?;
        Ok(Self { id, key })
    }

    /// The key id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The 32 public bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `signature` is this key's signature of `serial`.
    ///
    /// Uses strict verification (rejects non-canonical signatures and weak keys), so a genuine label
    /// has exactly one valid code.
    pub fn verify(&self, serial: LabelSerial, signature: &LabelSignature) -> bool {
        if serial.key_id() != self.id {
            return false;
        }
        let sig = Signature::from_bytes(&signature.0);
        self.key
            .verify_strict(&signed_message(serial), &sig)
            .is_ok()
    }
}

impl LabelVerifyingKey {
    /// Whether `signature` is this key's signature of an anchor `statement` (see
    /// [`LabelSigningKey::sign_anchor`]).
    pub fn verify_anchor(&self, statement: &[u8], signature: &LabelSignature) -> bool {
        let sig = Signature::from_bytes(&signature.0);
        self.key
            .verify_strict(&anchor_message(self.id, statement), &sig)
            .is_ok()
    }
}

impl fmt::Debug for LabelVerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabelVerifyingKey")
            .field("id", &self.id)
            .field("public", &hex(self.key.as_bytes()))
            .finish()
    }
}

/// The outcome of checking a signature against a [`VerifyingKeySet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Signed by the key the serial names.
    Valid,
    /// The serial names a known key, but the signature is not that key's.
    Invalid,
    /// The serial names a key id that is not in the set.
    UnknownKey,
}

/// The public keys a verifier trusts, by id.
///
/// Holds every key that ever signed labels (not only the current one), so that rotation never
/// invalidates printed labels.
#[derive(Debug, Clone, Default)]
pub struct VerifyingKeySet {
    keys: BTreeMap<KeyId, LabelVerifyingKey>,
}

impl VerifyingKeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the key with `key.id()`.
    pub fn insert(&mut self, key: LabelVerifyingKey) {
        self.keys.insert(key.id, key);
    }

    /// The key with this id.
    pub fn get(&self, id: KeyId) -> Option<&LabelVerifyingKey> {
        self.keys.get(&id)
    }

    /// All keys, by ascending id.
    pub fn iter(&self) -> impl Iterator<Item = &LabelVerifyingKey> {
        self.keys.values()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks `signature` of `serial` with the key the serial names.
    pub fn check(&self, serial: LabelSerial, signature: &LabelSignature) -> SignatureCheck {
        match self.keys.get(&serial.key_id()) {
            None => SignatureCheck::UnknownKey,
            Some(key) if key.verify(serial, signature) => SignatureCheck::Valid,
            Some(_) => SignatureCheck::Invalid,
        }
    }
}

impl FromIterator<LabelVerifyingKey> for VerifyingKeySet {
    fn from_iter<I: IntoIterator<Item = LabelVerifyingKey>>(iter: I) -> Self {
        let mut set = Self::new();
        for key in iter {
            set.insert(key);
        }
        set
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    pub(crate) fn test_key(id: u32, seed: u64) -> LabelSigningKey {
        LabelSigningKey::generate_with(KeyId::new(id).unwrap(), &mut StdRng::seed_from_u64(seed))
    }

    fn serial(id: u32, seq: u64) -> LabelSerial {
        LabelSerial::new(KeyId::new(id).unwrap(), seq).unwrap()
    }

    #[test]
    fn anchor_signatures_are_separate_from_label_signatures() {
        let key = test_key(1, 7);
        let public = key.verifying_key();
        let sig = key.sign_anchor(b"1700000000000\n3\n9\nabc");
        assert!(public.verify_anchor(b"1700000000000\n3\n9\nabc", &sig));
        assert!(!public.verify_anchor(b"1700000000000\n3\n8\nabc", &sig));
        assert!(!test_key(1, 8)
            .verifying_key()
            .verify_anchor(b"1700000000000\n3\n9\nabc", &sig));
        // A label's signature never passes for an anchor's, whatever the statement.
        let s = serial(1, 42);
        let label_sig = key.sign(s).unwrap();
        assert!(!public.verify_anchor(&signed_message(s)[16..], &label_sig));
        assert!(!public.verify_anchor(&signed_message(s), &label_sig));
    }

    #[test]
    fn message_is_domain_separated_and_fixed() {
        let msg = signed_message(serial(7, 42));
        assert_eq!(&msg[..16], b"suyuan-label-v1\0");
        assert_eq!(msg[16], 7);
        assert_eq!(&msg[17..], &serial(7, 42).to_digits());
        assert_eq!(msg.len(), 30);
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let key = test_key(3, 1);
        let s = serial(3, 1000);
        let sig = key.sign(s).unwrap();
        assert!(key.verifying_key().verify(s, &sig));
        assert!(!key.verifying_key().verify(serial(3, 1001), &sig));
        let mut bad = sig.to_bytes();
        bad[10] ^= 1;
        assert!(!key
            .verifying_key()
            .verify(s, &LabelSignature::from_bytes(bad)));
        // Ed25519 is deterministic: the same serial always gets the same code.
        assert_eq!(key.sign(s).unwrap(), sig);
    }

    #[test]
    fn key_restored_from_secret_bytes_signs_the_same() {
        let key = test_key(4, 2);
        let again = LabelSigningKey::from_secret_bytes(key.id(), &key.to_secret_bytes());
        let s = serial(4, 5);
        assert_eq!(key.sign(s).unwrap(), again.sign(s).unwrap());
        let public =
            LabelVerifyingKey::from_bytes(key.id(), &key.verifying_key().to_bytes()).unwrap();
        assert_eq!(public, key.verifying_key());
    }

    #[test]
    fn a_key_refuses_serials_of_another_id() {
        let key = test_key(3, 1);
        assert!(matches!(
            key.sign(serial(4, 1)),
            Err(Error::KeyIdMismatch { .. })
        ));
    }

    #[test]
    fn rotation_keeps_old_labels_verifiable() {
        let (old_key, new_key) = (test_key(1, 10), test_key(2, 11));
        let old = serial(1, 77);
        let old_sig = old_key.sign(old).unwrap();
        let new = serial(2, 77);
        let new_sig = new_key.sign(new).unwrap();
        let keys: VerifyingKeySet = [old_key.verifying_key(), new_key.verifying_key()]
            .into_iter()
            .collect();
        assert_eq!(keys.check(old, &old_sig), SignatureCheck::Valid);
        assert_eq!(keys.check(new, &new_sig), SignatureCheck::Valid);
        // A signature moved to the same sequence under the other key id does not verify.
        assert_eq!(keys.check(serial(2, 77), &old_sig), SignatureCheck::Invalid);
        assert_eq!(
            keys.check(serial(9, 77), &old_sig),
            SignatureCheck::UnknownKey
        );
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let key = test_key(8, 3);
        let secret = hex(&key.to_secret_bytes());
        let copy = LabelSigningKey::from_secret_bytes(key.id(), &key.to_secret_bytes());
        for text in [format!("{key:?}"), format!("{key:#?}"), format!("{copy:?}")] {
            assert!(!text.contains(&secret), "{text}");
            assert!(!text.contains(&secret[..16]), "{text}");
        }
        assert!(format!("{key:?}").contains("<redacted>"));
    }
}
