//! A memory limit per query inside the server's shared pool.
//!
//! DataFusion has one memory pool per runtime environment, and the server's sessions share one (the
//! server-wide `memory_limit`). One query should not be able to take all of it, so each executed plan gets
//! a runtime environment whose pool is a [`QueryPool`]: it counts what this query's operators reserve,
//! refuses growth past the per-query limit (operators that can spill then spill, the others fail with
//! `ResourcesExhausted`) and passes every reservation on to the shared pool, which keeps enforcing the
//! server-wide limit.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::resources_datafusion_err;
use datafusion::error::Result;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::RuntimeEnv;

#[derive(Debug)]
pub struct QueryPool {
    inner: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl QueryPool {
    pub fn new(inner: Arc<dyn MemoryPool>, limit: usize) -> Self {
        Self {
            inner,
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// `env` with its pool wrapped in a fresh per-query pool of `limit` bytes.
    pub fn runtime_for_query(env: &RuntimeEnv, limit: usize) -> Arc<RuntimeEnv> {
        let mut env = env.clone();
        env.memory_pool = Arc::new(Self::new(Arc::clone(&env.memory_pool), limit));
        Arc::new(env)
    }
}

impl fmt::Display for QueryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "query pool ({} of {} bytes) in {}",
            self.used.load(Ordering::Relaxed),
            self.limit,
            self.inner
        )
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "colloquy query pool"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.inner.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::Relaxed);
        self.inner.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(additional).filter(|&n| n <= self.limit)
            })
            .map_err(|used| {
                resources_datafusion_err!(
                    "the query needs more than the server's per-query memory limit of {} MB ({} MB in use, {} more asked by {}); add filters or aggregate before returning rows, or raise query_memory_limit",
                    self.limit >> 20,
                    used >> 20,
                    additional.div_ceil(1 << 20),
                    reservation.consumer().name()
                )
            })?;
        if let Err(e) = self.inner.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(e);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        match self.inner.memory_limit() {
            MemoryLimit::Finite(n) => MemoryLimit::Finite(n.min(self.limit)),
            _ => MemoryLimit::Finite(self.limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    #[test]
    fn refuses_past_its_limit_and_gives_back_on_drop() {
        let shared: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1000));
        let q1: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(Arc::clone(&shared), 300));
        let q2: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(Arc::clone(&shared), 900));
        let a = MemoryConsumer::new("sort").register(&q1);
        a.try_grow(200).expect("within the query's limit");
        let err = a.try_grow(200).expect_err("past 300 bytes");
        assert!(err.to_string().contains("per-query memory limit"), "{err}");
        assert_eq!(q1.reserved(), 200);
        assert_eq!(shared.reserved(), 200);
        // The shared pool still limits the sum: 200 + 900 > 1000.
        let b = MemoryConsumer::new("join").register(&q2);
        assert!(b.try_grow(900).is_err());
        assert_eq!(q2.reserved(), 0, "a refused growth is not counted");
        b.try_grow(800).expect("fits in both pools");
        drop(a);
        assert_eq!(shared.reserved(), 800);
        assert_eq!(q1.reserved(), 0);
    }
}
