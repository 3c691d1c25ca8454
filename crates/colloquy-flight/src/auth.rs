//! Who is calling. Basic credentials (the Flight handshake) are exchanged for a bearer token; static API
//! tokens from the configuration work as bearer tokens directly. With no users and no tokens configured,
//! every caller is accepted as `anonymous`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use tonic::Status;
use tonic::metadata::MetadataValue;

/// The ADBC Go driver sends base64 without padding; others pad.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The authenticated caller, passed to handlers through request extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: Arc<str>,
    /// The bearer token the caller used, if any: it identifies the session.
    pub token: Option<Arc<str>>,
}

#[derive(Default, Debug)]
pub struct Authenticator {
    users: HashMap<String, String>,
    static_tokens: HashMap<String, String>,
    issued: Mutex<HashMap<String, String>>,
    counter: AtomicU64,
}

impl Authenticator {
    /// `users`: name → password; `tokens`: token → user name.
    pub fn new(users: HashMap<String, String>, tokens: HashMap<String, String>) -> Self {
        Self {
            users,
            static_tokens: tokens,
            ..Self::default()
        }
    }

    /// Whether anyone must authenticate.
    pub fn required(&self) -> bool {
        !self.users.is_empty() || !self.static_tokens.is_empty()
    }

    /// Checks an `authorization` header value (or its absence).
    pub fn check(&self, header: Option<&str>) -> Result<Principal, Status> {
        let Some(header) = header else {
            if self.required() {
                return Err(Status::unauthenticated(
                    "authentication required: log in with a user name and password, or send 'authorization: Bearer <token>'",
                ));
            }
            return Ok(Principal {
                user: "anonymous".into(),
                token: None,
            });
        };
        if let Some(b) = strip_scheme(header, "basic") {
            let (user, password) = decode_basic(b)?;
            return match self.users.get(&user) {
                Some(p) if constant_time_eq(p.as_bytes(), password.as_bytes()) => Ok(Principal {
                    user: user.into(),
                    token: None,
                }),
                _ => Err(Status::unauthenticated(format!(
                    "wrong user name or password for '{user}'"
                ))),
            };
        }
        if let Some(token) = strip_scheme(header, "bearer") {
            let token = token.trim();
            if let Some(user) = self.static_tokens.get(token) {
                return Ok(Principal {
                    user: user.as_str().into(),
                    token: Some(token.into()),
                });
            }
            let issued = self
                .issued
                .lock()
                .map_err(|_| Status::internal("token table poisoned"))?;
            if let Some(user) = issued.get(token) {
                return Ok(Principal {
                    user: user.as_str().into(),
                    token: Some(token.into()),
                });
            }
            if !self.required() {
                // An unknown token on an open server still names a session of its own.
                return Ok(Principal {
                    user: "anonymous".into(),
                    token: Some(token.into()),
                });
            }
            return Err(Status::unauthenticated(
                "unknown or expired bearer token: log in again",
            ));
        }
        Err(Status::unauthenticated(
            "the authorization header must be 'Basic …' or 'Bearer …'",
        ))
    }

    /// A fresh token for `user` (after a successful handshake).
    pub fn issue(&self, user: &str) -> Result<String, Status> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = format!("{user}:{n}:{nanos}:{:p}", &self.counter);
        // Two independent 64-bit mixes of the seed: unguessable enough for a session key on a trusted
        // network; deployments exposed beyond it use static tokens over TLS.
        let a = colloquy_hash(seed.as_bytes(), 0x9e37_79b9_7f4a_7c15);
        let b = colloquy_hash(seed.as_bytes(), 0xc2b2_ae3d_27d4_eb4f);
        let token = format!("{a:016x}{b:016x}");
        self.issued
            .lock()
            .map_err(|_| Status::internal("token table poisoned"))?
            .insert(token.clone(), user.to_owned());
        Ok(token)
    }

    /// Static tokens configured, for the start-up log.
    pub fn static_token_users(&self) -> HashSet<&str> {
        self.static_tokens.values().map(String::as_str).collect()
    }
}

fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = header.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn decode_basic(b64: &str) -> Result<(String, String), Status> {
    let bytes = B64
        .decode(b64.trim())
        .map_err(|_| Status::unauthenticated("basic credentials are not valid base64"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Status::unauthenticated("basic credentials are not UTF-8"))?;
    // Passwords may contain ':', user names may not.
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| Status::unauthenticated("basic credentials need 'user:password'"))?;
    Ok((user.to_owned(), password.to_owned()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn colloquy_hash(bytes: &[u8], seed: u64) -> u64 {
    let mut h = seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3).rotate_left(5);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The header value for a token.
pub fn bearer(token: &str) -> Result<MetadataValue<tonic::metadata::Ascii>, Status> {
    format!("Bearer {token}")
        .parse()
        .map_err(|_| Status::internal("token is not a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(
            [("ana".to_owned(), "s3:cret".to_owned())].into(),
            [("tok-1".to_owned(), "ci".to_owned())].into(),
        )
    }

    #[test]
    fn basic_static_and_issued() {
        let a = auth();
        // "ana:s3:cret" without padding, as the ADBC driver sends it.
        let b = B64.encode("ana:s3:cret");
        let b = b.trim_end_matches('=');
        assert_eq!(
            a.check(Some(&format!("Basic {b}")))
                .expect("ok")
                .user
                .as_ref(),
            "ana"
        );
        assert!(
            a.check(Some(&format!("Basic {}", B64.encode("ana:wrong"))))
                .is_err()
        );
        assert_eq!(
            a.check(Some("Bearer tok-1")).expect("ok").user.as_ref(),
            "ci"
        );
        let t = a.issue("ana").expect("token");
        assert_eq!(
            a.check(Some(&format!("bearer {t}")))
                .expect("ok")
                .user
                .as_ref(),
            "ana"
        );
        assert_eq!(
            a.check(None).expect_err("required").code(),
            tonic::Code::Unauthenticated
        );
        assert!(a.check(Some("Bearer nope")).is_err());
    }

    #[test]
    fn open_server() {
        let a = Authenticator::default();
        assert_eq!(a.check(None).expect("ok").user.as_ref(), "anonymous");
    }
}
