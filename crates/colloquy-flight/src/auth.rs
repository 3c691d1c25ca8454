//! Who is calling. Basic credentials (the Flight handshake) are checked against argon2 password hashes and
//! exchanged for a bearer token; static API tokens from the configuration work as bearer tokens directly.
//! With no users and no tokens configured, every caller is accepted as `anonymous`.
//!
//! Issued tokens are 256 random bits from the operating system, expire, are revoked by CloseSession and
//! by a configuration reload that removes the user or changes the password, and are capped in number.
//! The table keys tokens by their BLAKE3 hash, so the lookup never compares a secret byte by byte.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
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

/// Verified (user, password) pairs remembered so that a client sending Basic credentials on every call
/// costs one argon2 check, not one per call. Bounded: cleared when full.
const VERIFIED_CACHE: usize = 1024;

/// The authenticated caller, passed to handlers through request extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: Arc<str>,
    /// The bearer token the caller used, if any: it identifies the session.
    pub token: Option<Arc<str>>,
}

/// How long issued tokens live and how many may exist at once.
#[derive(Clone, Copy, Debug)]
pub struct TokenLimits {
    pub ttl: Duration,
    pub max_tokens: usize,
}

impl Default for TokenLimits {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(12 * 3600),
            max_tokens: 10_000,
        }
    }
}

struct Issued {
    user: Arc<str>,
    expires: Instant,
}

type Digest = [u8; 32];

#[derive(Default)]
struct Credentials {
    /// user → argon2 PHC string.
    users: HashMap<String, String>,
    /// (token, user) for the static API tokens.
    static_tokens: Vec<(String, String)>,
}

pub struct Authenticator {
    creds: RwLock<Credentials>,
    issued: Mutex<HashMap<Digest, Issued>>,
    verified: Mutex<HashMap<Digest, String>>,
    limits: TokenLimits,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self {
            creds: RwLock::new(Credentials::default()),
            issued: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
            limits: TokenLimits::default(),
        }
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print hashes or tokens.
        f.debug_struct("Authenticator")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A password hash for the `[server.users]` table (`colloquy hash-password`).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness from the system: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A fresh 256-bit secret, hex-encoded.
fn random_hex() -> Result<String, Status> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Status::internal(format!("no randomness from the system: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// An unguessable handle for tickets and prepared statements (128 random bits).
pub fn random_handle(prefix: &str) -> Result<String, Status> {
    let hex = random_hex()?;
    Ok(format!("{prefix}-{}", &hex[..32]))
}

fn digest(bytes: &[u8]) -> Digest {
    *blake3::hash(bytes).as_bytes()
}

fn check_hashes(users: &HashMap<String, String>) -> Result<(), String> {
    for (user, hash) in users {
        let ok = PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"));
        if !ok {
            return Err(format!(
                "[server.users] '{user}': the value must be an argon2 password hash, not the password; make one with `colloquy hash-password`"
            ));
        }
    }
    Ok(())
}

impl Authenticator {
    /// `users`: name → argon2 password hash (PHC string); `tokens`: static token → user name.
    pub fn new(
        users: HashMap<String, String>,
        tokens: HashMap<String, String>,
    ) -> Result<Self, String> {
        Self::with_limits(users, tokens, TokenLimits::default())
    }

    pub fn with_limits(
        users: HashMap<String, String>,
        tokens: HashMap<String, String>,
        limits: TokenLimits,
    ) -> Result<Self, String> {
        check_hashes(&users)?;
        Ok(Self {
            creds: RwLock::new(Credentials {
                users,
                static_tokens: tokens.into_iter().collect(),
            }),
            limits,
            ..Self::default()
        })
    }

    /// New users and tokens from a configuration reload. Tokens issued to a user who is gone, or whose
    /// password hash changed, stop working at once.
    pub fn reload(
        &self,
        users: HashMap<String, String>,
        tokens: HashMap<String, String>,
    ) -> Result<usize, String> {
        check_hashes(&users)?;
        let mut creds = self
            .creds
            .write()
            .map_err(|_| "credentials lock poisoned")?;
        let changed: Vec<String> = creds
            .users
            .iter()
            .filter(|(u, h)| users.get(*u) != Some(*h))
            .map(|(u, _)| u.clone())
            .collect();
        let required_before = !creds.users.is_empty() || !creds.static_tokens.is_empty();
        creds.users = users;
        creds.static_tokens = tokens.into_iter().collect();
        let required_now = !creds.users.is_empty() || !creds.static_tokens.is_empty();
        drop(creds);
        if let Ok(mut v) = self.verified.lock() {
            v.clear();
        }
        // Anonymous tokens of an open server end when it starts requiring logins.
        let drop_all = required_now && !required_before;
        let mut issued = self.issued.lock().map_err(|_| "token table poisoned")?;
        let before = issued.len();
        issued.retain(|_, t| !drop_all && !changed.iter().any(|u| **u == *t.user));
        Ok(before - issued.len())
    }

    /// Whether anyone must authenticate.
    pub fn required(&self) -> bool {
        self.creds
            .read()
            .map(|c| !c.users.is_empty() || !c.static_tokens.is_empty())
            .unwrap_or(true)
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
            return if self.verify_password(&user, &password) {
                Ok(Principal {
                    user: user.into(),
                    token: None,
                })
            } else {
                Err(Status::unauthenticated(
                    "wrong user name or password".to_string(),
                ))
            };
        }
        if let Some(token) = strip_scheme(header, "bearer") {
            let token = token.trim();
            if let Some(user) = self.static_token_user(token) {
                return Ok(Principal {
                    user: user.into(),
                    token: Some(token.into()),
                });
            }
            let key = digest(token.as_bytes());
            let mut issued = self
                .issued
                .lock()
                .map_err(|_| Status::internal("token table poisoned"))?;
            return match issued.get(&key) {
                Some(t) if t.expires > Instant::now() => Ok(Principal {
                    user: Arc::clone(&t.user),
                    token: Some(token.into()),
                }),
                Some(_) => {
                    issued.remove(&key);
                    Err(Status::unauthenticated(
                        "the bearer token has expired: log in again",
                    ))
                }
                None => Err(Status::unauthenticated(
                    "unknown, expired or revoked bearer token: log in again",
                )),
            };
        }
        Err(Status::unauthenticated(
            "the authorization header must be 'Basic …' or 'Bearer …'",
        ))
    }

    /// Compares against every static token without stopping early, so timing says nothing of which
    /// one (or how much of one) matched.
    fn static_token_user(&self, token: &str) -> Option<String> {
        let creds = self.creds.read().ok()?;
        let mut found = None;
        for (t, user) in &creds.static_tokens {
            if constant_time_eq(t.as_bytes(), token.as_bytes()) {
                found = Some(user.clone());
            }
        }
        found
    }

    fn verify_password(&self, user: &str, password: &str) -> bool {
        let hash = self
            .creds
            .read()
            .ok()
            .and_then(|c| c.users.get(user).cloned());
        let key = digest(format!("{user}\0{password}").as_bytes());
        if let Some(hash) = &hash
            && self
                .verified
                .lock()
                .is_ok_and(|v| v.get(&key).is_some_and(|h| h == hash))
        {
            return true;
        }
        // An unknown user costs the same argon2 check as a wrong password: timing does not tell which
        // user names exist.
        let target = hash.clone().unwrap_or_else(dummy_hash);
        let ok = cpu_bound(|| {
            PasswordHash::new(&target).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        }) && hash.is_some();
        if ok && let (Some(hash), Ok(mut v)) = (hash, self.verified.lock()) {
            if v.len() >= VERIFIED_CACHE {
                v.clear();
            }
            v.insert(key, hash);
        }
        ok
    }

    /// A fresh token for `user` (after a successful handshake).
    pub fn issue(&self, user: &str) -> Result<String, Status> {
        let token = random_hex()?;
        let now = Instant::now();
        let mut issued = self
            .issued
            .lock()
            .map_err(|_| Status::internal("token table poisoned"))?;
        if issued.len() >= self.limits.max_tokens {
            issued.retain(|_, t| t.expires > now);
        }
        if issued.len() >= self.limits.max_tokens {
            return Err(Status::resource_exhausted(format!(
                "the server holds its maximum of {} session tokens: close sessions or wait for tokens to expire (max_tokens in [server])",
                self.limits.max_tokens
            )));
        }
        issued.insert(
            digest(token.as_bytes()),
            Issued {
                user: user.into(),
                expires: now + self.limits.ttl,
            },
        );
        Ok(token)
    }

    /// Ends an issued token (CloseSession). Static tokens stay: they live in the configuration.
    pub fn revoke(&self, token: &str) {
        if let Ok(mut issued) = self.issued.lock() {
            issued.remove(&digest(token.as_bytes()));
        }
    }

    /// Issued tokens alive now.
    pub fn issued_count(&self) -> usize {
        let now = Instant::now();
        self.issued
            .lock()
            .map(|t| t.values().filter(|t| t.expires > now).count())
            .unwrap_or(0)
    }

    /// Forgets expired tokens (the session sweeper calls this).
    pub fn sweep(&self) {
        let now = Instant::now();
        if let Ok(mut issued) = self.issued.lock() {
            issued.retain(|_, t| t.expires > now);
        }
    }

    /// (users, static tokens) configured, for the start-up log.
    pub fn counts(&self) -> (usize, usize) {
        self.creds
            .read()
            .map(|c| (c.users.len(), c.static_tokens.len()))
            .unwrap_or_default()
    }
}

/// argon2 takes tens of milliseconds: on a multi-thread runtime the worker hands its other tasks over
/// first, so a burst of logins does not stall the gRPC runtime.
fn cpu_bound<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password("colloquy: no such user").unwrap_or_default())
        .clone()
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
    // Compare digests: equal length always, so the length of the secret does not leak either.
    let (a, b) = (digest(a), digest(b));
    a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
            [("ana".to_owned(), hash_password("s3:cret").expect("hash"))].into(),
            [("tok-1".to_owned(), "ci".to_owned())].into(),
        )
        .expect("auth")
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
        // Twice: the second is answered from the verified cache.
        assert!(a.check(Some(&format!("Basic {b}"))).is_ok());
        assert!(
            a.check(Some(&format!("Basic {}", B64.encode("ana:wrong"))))
                .is_err()
        );
        assert!(
            a.check(Some(&format!("Basic {}", B64.encode("bob:s3:cret"))))
                .is_err()
        );
        assert_eq!(
            a.check(Some("Bearer tok-1")).expect("ok").user.as_ref(),
            "ci"
        );
        let t = a.issue("ana").expect("token");
        assert_eq!(t.len(), 64, "256 bits, hex");
        assert_ne!(t, a.issue("ana").expect("token"));
        assert_eq!(
            a.check(Some(&format!("bearer {t}")))
                .expect("ok")
                .user
                .as_ref(),
            "ana"
        );
        a.revoke(&t);
        assert!(a.check(Some(&format!("Bearer {t}"))).is_err());
        assert_eq!(
            a.check(None).expect_err("required").code(),
            tonic::Code::Unauthenticated
        );
        assert!(a.check(Some("Bearer nope")).is_err());
    }

    #[test]
    fn plaintext_passwords_are_refused() {
        let e = Authenticator::new(
            [("ana".to_owned(), "s3cret".to_owned())].into(),
            HashMap::new(),
        )
        .expect_err("plaintext");
        assert!(e.contains("colloquy hash-password"), "{e}");
    }

    #[test]
    fn tokens_expire_and_are_capped() {
        let a = Authenticator::with_limits(
            HashMap::new(),
            HashMap::new(),
            TokenLimits {
                ttl: Duration::from_millis(30),
                max_tokens: 2,
            },
        )
        .expect("auth");
        let t1 = a.issue("anonymous").expect("t1");
        a.issue("anonymous").expect("t2");
        assert_eq!(
            a.issue("anonymous").expect_err("full").code(),
            tonic::Code::ResourceExhausted
        );
        std::thread::sleep(Duration::from_millis(50));
        assert!(a.check(Some(&format!("Bearer {t1}"))).is_err());
        // Expired tokens make room.
        assert!(a.issue("anonymous").is_ok());
    }

    #[test]
    fn open_server_accepts_no_made_up_tokens() {
        let a = Authenticator::default();
        assert_eq!(a.check(None).expect("ok").user.as_ref(), "anonymous");
        assert!(a.check(Some("Bearer made-up")).is_err());
        let t = a.issue("anonymous").expect("token");
        assert!(a.check(Some(&format!("Bearer {t}"))).is_ok());
    }

    #[test]
    fn reload_revokes_changed_users() {
        let a = auth();
        let t = a.issue("ana").expect("token");
        let n = a
            .reload(
                [("ana".to_owned(), hash_password("new").expect("hash"))].into(),
                HashMap::new(),
            )
            .expect("reload");
        assert_eq!(n, 1);
        assert!(a.check(Some(&format!("Bearer {t}"))).is_err());
        assert!(a.check(Some("Bearer tok-1")).is_err());
    }
}
