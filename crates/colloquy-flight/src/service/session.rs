//! Sessions: who is calling, which session a call belongs to, who owns a handle, and the caps on open
//! sessions and on each owner's running statements.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tonic::Request;

use crate::auth::Principal;
use crate::error::{Error, Result};

use super::{ColloquyFlightSql, Session};

impl ColloquyFlightSql {
    /// Who owns a handle and whose limits a statement counts against: a logged-in user across their
    /// sessions, an anonymous client only in its own session.
    pub(super) fn owner<T>(req: &Request<T>) -> String {
        let p = Self::principal(req);
        if p.user.as_ref() == "anonymous" {
            Self::session_key(req)
        } else {
            format!("user:{}", p.user)
        }
    }

    /// A slot among the owner's concurrent statements, given back when dropped.
    pub(super) fn slot(&self, owner: &str) -> Result<Slot> {
        let max = self.options.gate.limits.max_queries_per_user;
        let mut busy = self
            .busy
            .lock()
            .map_err(|_| Error::Internal("busy table poisoned".into()))?;
        let n = busy.entry(owner.to_owned()).or_insert(0);
        if *n >= max {
            return Err(Error::ResourceExhausted(format!(
                "{max} statements of yours are running already: wait for one to finish (max_queries_per_user in [server])"
            )));
        }
        *n += 1;
        Ok(Slot {
            owner: owner.to_owned(),
            busy: Arc::clone(&self.busy),
        })
    }

    pub(super) fn principal<T>(req: &Request<T>) -> Principal {
        req.extensions()
            .get::<Principal>()
            .cloned()
            .unwrap_or(Principal {
                user: "anonymous".into(),
                token: None,
            })
    }

    /// The session key: the bearer token if there is one, else the client's address (one HTTP/2
    /// connection per ADBC or pyarrow connection).
    pub(super) fn session_key<T>(req: &Request<T>) -> String {
        let p = Self::principal(req);
        match (&p.token, req.remote_addr()) {
            (Some(t), _) => format!("token:{t}"),
            // The user too: a connection that sends another user's password gets another session.
            (None, Some(addr)) => format!("addr:{addr}:{}", p.user),
            (None, None) => format!("user:{}", p.user),
        }
    }

    /// The session under `key`, made for `user` (and shaped by the governance rules in force) when
    /// there is none or the rules changed since it was made.
    pub(super) async fn session(&self, key: &str, user: &str) -> Result<Arc<Session>> {
        let now = self.started.elapsed().as_millis() as u64;
        let (generation, governance) = self.options.governance.get();
        {
            let mut sessions = self.sessions.lock().await;
            match sessions.get(key) {
                Some(s) if s.generation == generation => {
                    s.last_used.store(now, Ordering::Relaxed);
                    return Ok(s.clone());
                }
                Some(_) => {
                    // Made under rules no longer in force: made again below.
                    sessions.remove(key);
                }
                None => {}
            }
            self.check_session_room(sessions.len())?;
        }
        // Built without holding the table: a new session registers archives (and may list them), on
        // the query runtime, while other clients' calls go on.
        let make = (self.options.factory)();
        let policy = self.options.gate.policy.clone();
        let user = user.to_string();
        let ledger = Arc::clone(&self.models);
        let tag = session_tag(key);
        let ctx = self
            .options
            .cpu
            .spawn(async move {
                let ctx = make.await?;
                colloquy::set_user(&ctx, &user);
                let governance = governance.filter(|g| g.is_active());
                // Everybody's model registrations are audit data: seen by those who read the trail.
                let everything = governance
                    .as_ref()
                    .is_none_or(|g| g.may_read(&user, crate::audit::TABLE));
                colloquy::share_model_history(&ctx, ledger, &tag, everything);
                if let Some(g) = governance {
                    g.apply(&ctx, &user, policy.as_deref()).await?;
                }
                Ok::<_, Error>(ctx)
            })
            .await
            .map_err(|e| Error::Internal(format!("session task failed: {e}")))??;
        let mut sessions = self.sessions.lock().await;
        if let Some(s) = sessions.get(key).filter(|s| s.generation == generation) {
            // Another call of the same client won the race: use its session.
            return Ok(s.clone());
        }
        self.check_session_room(sessions.len())?;
        let s = Arc::new(Session {
            ctx,
            generation,
            last_used: AtomicU64::new(now),
        });
        sessions.insert(key.to_owned(), s.clone());
        Ok(s)
    }

    /// Refuses a prepared plan made under governance rules no longer in force (its tables are shaped
    /// by the old ones).
    pub(super) fn same_rules(generation: u64, session: &Session) -> Result<()> {
        if generation == session.generation {
            return Ok(());
        }
        Err(Error::invalid(
            "the server's access rules changed since this statement was prepared: prepare it again",
        ))
    }

    pub(super) fn check_session_room(&self, open: usize) -> Result<()> {
        let max = self.options.gate.limits.max_sessions;
        if open >= max {
            return Err(Error::ResourceExhausted(format!(
                "the server has its maximum of {max} sessions open: close sessions or wait for idle ones to end (max_sessions in [server])"
            )));
        }
        Ok(())
    }

    pub(super) async fn session_for<T>(&self, req: &Request<T>) -> Result<Arc<Session>> {
        self.session(&Self::session_key(req), &Self::principal(req).user)
            .await
    }

    /// Forgets sessions idle for longer than `idle` (clients that vanished without CloseSession), with
    /// their parked results and prepared statements, and results parked longer than `idle` anywhere.
    pub async fn sweep(&self, idle: std::time::Duration) {
        let now = self.started.elapsed().as_millis() as u64;
        let limit = idle.as_millis() as u64;
        let mut gone: Vec<String> = Vec::new();
        self.sessions.lock().await.retain(|key, s| {
            let keep = now.saturating_sub(s.last_used.load(Ordering::Relaxed)) <= limit;
            if !keep {
                gone.push(key.clone());
            }
            keep
        });
        if let Ok(mut tickets) = self.tickets.lock() {
            tickets.retain(|_, t| !gone.contains(&t.session) && t.created.elapsed() <= idle);
        }
        if let Ok(mut prepared) = self.prepared.lock() {
            prepared.retain(|_, p| !gone.contains(&p.session));
        }
        self.options.auth.sweep();
        if !gone.is_empty() {
            tracing::info!(sessions = gone.len(), "closed idle sessions");
        }
    }

    /// Sessions open now.
    pub async fn session_count(&self) -> usize {
        self.sessions.lock().await.len()
    }
}

/// One of an owner's running statements; dropping it gives the slot back.
pub(super) struct Slot {
    owner: String,
    busy: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.busy.lock()
            && let Some(n) = busy.get_mut(&self.owner)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                busy.remove(&self.owner);
            }
        }
    }
}

/// A session as the audit trail and the model ledger name it: a hash of its key, never the key (it
/// holds the bearer token).
pub(super) fn session_tag(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex()[..16].to_string()
}
