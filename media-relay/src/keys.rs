//! The SRTP keys of a peer connection, for the relay's own forwarding path.
//!
//! The `rtc` crate derives a peer connection's SRTP contexts from the DTLS
//! handshake and keeps them to itself. The relay encrypts the packets it
//! forwards, and decrypts those it receives, with contexts of its own (see
//! `engine::Fast` and `reception::Reception`), so it needs the same keys.
//! [`KeyTap`] is the peer connection's crypto provider: it hands
//! every operation to the default provider, and notes the SRTP master keys
//! as they are used. SRTP key derivation (RFC 3711 4.3.3, the AES-CM PRF) is
//! the one user of single-block encryption in the crate: each call's key is a
//! master key, and its input block is the master salt with the label XORed
//! into byte 7 (and the block counter in the last two bytes). The crate makes
//! the local context first, then the remote one, and derives the SRTP
//! encryption key (label 0) first in each; so the first block seen for each
//! master key holds the salt as it is.
//!
//! Only the 128-bit profiles are read this way (AES-256 uses another PRF
//! layout); with another, [`KeyTap::contexts`] gives nothing and the crate
//! keeps encrypting. The engine checks the local keys it read against the
//! first SRTCP packet the peer connection itself sends (with the same keys);
//! a participant's packet the remote keys cannot open goes to the peer
//! connection, and if that opens it, the engine stops using them.

use std::sync::{Arc, Mutex};

use rtc::crypto::{
    ActiveKeyExchange, AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher,
    CryptoAlgorithm, CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac, PublicKey,
    RTCCrypto, RTCCryptoProvider, RTCRandom, SignatureScheme, SigningKey, StreamCipher,
    StreamCipherAlgorithm,
};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;

/// A master key, and the input block of its first use.
struct Master {
    key: Vec<u8>,
    block: [u8; 16],
}

/// A peer connection's crypto provider: the default one, noting SRTP master keys.
pub(crate) struct KeyTap {
    inner: Arc<dyn RTCCryptoProvider>,
    /// In the order of first use: local, then remote.
    masters: Mutex<Vec<Master>>,
}

impl std::fmt::Debug for KeyTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyTap")
    }
}

impl KeyTap {
    pub(crate) fn new() -> Result<Arc<KeyTap>, CryptoError> {
        Ok(Arc::new(KeyTap { inner: rtc::crypto::default_provider()?, masters: Mutex::new(Vec::new()) }))
    }

    /// New SRTP contexts with the keys the peer connection derived its own
    /// from, once its DTLS handshake is done; `cipher` is the profile's name
    /// as the transport statistics give it.
    pub(crate) fn contexts(&self, cipher: &str) -> Option<Contexts> {
        let profile = match cipher {
            "SRTP_AEAD_AES_128_GCM" => ProtectionProfile::AeadAes128Gcm,
            "SRTP_AES128_CM_HMAC_SHA1_80" => ProtectionProfile::Aes128CmHmacSha1_80,
            "SRTP_AES128_CM_HMAC_SHA1_32" => ProtectionProfile::Aes128CmHmacSha1_32,
            _ => return None,
        };
        let masters = self.masters.lock().unwrap_or_else(|e| e.into_inner());
        let [local, remote] = masters.as_slice() else { return None };
        let context = |master: &Master| {
            let salt = master.block.get(..profile.salt_len())?;
            let made = Context::new(&master.key, salt, profile, None, None, self.inner.crypto());
            made.ok()
        };
        Some(Contexts { send: context(local)?, check: context(local)?, receive: context(remote)? })
    }
}

/// A peer connection's SRTP keys, as contexts of the relay's own.
pub(crate) struct Contexts {
    /// To encrypt what the relay sends its participant.
    pub(crate) send: Context,
    /// The same keys, to check them against what the peer connection sends.
    pub(crate) check: Context,
    /// To decrypt the participant's media (the replay window is the
    /// relay's own, per stream: `crate::reception`).
    pub(crate) receive: Context,
}

impl RTCCryptoProvider for KeyTap {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        self
    }

    fn random(&self) -> &dyn RTCRandom {
        self.inner.random()
    }
}

impl RTCCrypto for KeyTap {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        self.inner.crypto().supports(algorithm)
    }

    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.crypto().hash(algorithm, data)
    }

    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        if let Ok(input) = <[u8; 16]>::try_from(&*block) {
            let mut masters = self.masters.lock().unwrap_or_else(|e| e.into_inner());
            // Two contexts, two master keys; nothing after them is of use.
            if masters.len() < 2 && !masters.iter().any(|m| m.key == key) {
                masters.push(Master { key: key.to_vec(), block: input });
            }
        }
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }

    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.inner.crypto().new_hmac(algorithm, key)
    }

    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        self.inner.crypto().new_stream_cipher(algorithm, key)
    }

    fn new_aead(&self, algorithm: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadCipher>, CryptoError> {
        self.inner.crypto().new_aead(algorithm, key)
    }

    fn new_cbc(&self, algorithm: CbcAlgorithm, key: &[u8]) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner.crypto().new_cbc(algorithm, key)
    }

    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        self.inner.crypto().start_key_exchange(algorithm)
    }

    fn generate_signing_key(&self, scheme: SignatureScheme) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().generate_signing_key(scheme)
    }

    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().import_signing_key(scheme, pkcs8_der)
    }

    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner.crypto().verify_signature(scheme, public_key, message, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTP packet: version 2, PT 96, sequence 7, timestamp 9, SSRC 0x1234.
    fn rtp() -> Vec<u8> {
        let mut packet = vec![0x80, 96, 0, 7, 0, 0, 0, 9, 0, 0, 0x12, 0x34];
        packet.extend_from_slice(&[0x5a; 100]);
        packet
    }

    /// The crate's way: a local and a remote context made with the tap as
    /// their crypto; ours, made from what the tap saw, encrypts the same bytes.
    #[test]
    fn contexts_from_the_keys_seen_encrypt_as_the_peer_connections_own() {
        for (cipher, profile) in [
            ("SRTP_AEAD_AES_128_GCM", ProtectionProfile::AeadAes128Gcm),
            ("SRTP_AES128_CM_HMAC_SHA1_80", ProtectionProfile::Aes128CmHmacSha1_80),
            ("SRTP_AES128_CM_HMAC_SHA1_32", ProtectionProfile::Aes128CmHmacSha1_32),
        ] {
            let tap = KeyTap::new().unwrap();
            let (key, salt) = (vec![0x11; profile.key_len()], vec![0x22; profile.salt_len()]);
            let (other_key, other_salt) = (vec![0x33; profile.key_len()], vec![0x44; profile.salt_len()]);
            let mut theirs = Context::new(&key, &salt, profile, None, None, tap.crypto()).unwrap();
            let mut remote =
                Context::new(&other_key, &other_salt, profile, None, None, tap.crypto()).unwrap();
            let Contexts { mut send, mut check, mut receive } = tap.contexts(cipher).expect(cipher);
            let expected = theirs.encrypt_rtp(&rtp()).unwrap();
            assert_eq!(send.encrypt_rtp(&rtp()).unwrap(), expected, "{cipher}");
            let rtcp = theirs.encrypt_rtcp(&[0x81, 200, 0, 1, 0, 0, 0x12, 0x34]).unwrap();
            assert!(check.decrypt_rtcp(&rtcp).is_ok(), "{cipher}");
            // What the other side encrypts with the remote keys, ours opens.
            let incoming = remote.encrypt_rtp(&rtp()).unwrap();
            assert_eq!(&receive.decrypt_rtp(&incoming).unwrap()[..], &rtp()[..], "{cipher}");
        }
    }

    #[test]
    fn gives_nothing_for_another_profile_or_before_the_handshake() {
        let tap = KeyTap::new().unwrap();
        assert!(tap.contexts("SRTP_AEAD_AES_128_GCM").is_none(), "no keys yet");
        let profile = ProtectionProfile::AeadAes128Gcm;
        for byte in [1u8, 2] {
            let key = vec![byte; profile.key_len()];
            Context::new(&key, &[byte; 12], profile, None, None, tap.crypto()).unwrap();
        }
        assert!(tap.contexts("SRTP_AEAD_AES_256_GCM").is_none());
        assert!(tap.contexts("Unknown").is_none());
        assert!(tap.contexts("SRTP_AEAD_AES_128_GCM").is_some());
    }
}
