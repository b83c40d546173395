//! The byte budget shared by everything the relay holds in memory (the `--max-total`
//! limit): queued messages and their bookkeeping with the memory store, and message bodies
//! being received with any store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::sessions::{Reason, Refusal};

/// The byte budget (see the module documentation).
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    /// An empty budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Bytes currently charged.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn try_charge(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Gives back `n` charged bytes.
    pub fn release(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }

    /// Reserves `n` bytes, or `None` if that would exceed the limit.
    pub fn reserve(self: &Arc<Self>, n: usize) -> Option<Reservation> {
        // Build the reservation only once the charge succeeded: dropping one releases its
        // amount, so a reservation made for a failed charge would release bytes never
        // charged and let the total grow past its limit.
        if !self.try_charge(n) {
            return None;
        }
        Some(Reservation {
            budget: self.clone(),
            amount: n,
        })
    }

    /// The refusal explaining that the total limit is reached.
    pub fn exhausted(&self) -> Refusal {
        Reason::MemoryLimit(self.limit).into()
    }
}

/// Bytes reserved from the [`Budget`]; released when dropped unless kept.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    amount: usize,
}

impl Reservation {
    /// Releases whatever exceeds `n` bytes.
    pub fn shrink_to(&mut self, n: usize) {
        if n < self.amount {
            self.budget.release(self.amount - n);
            self.amount = n;
        }
    }

    /// The bytes reserved.
    pub fn amount(&self) -> usize {
        self.amount
    }

    /// Turns the reservation into a permanent charge (released later by its owner through
    /// [`Budget::release`]).
    pub fn keep(self) -> usize {
        let amount = self.amount;
        std::mem::forget(self);
        amount
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_reservation_releases_nothing() {
        let budget = Budget::new(100);
        let held = budget.reserve(80).expect("80 of 100 bytes");
        for _ in 0..10 {
            assert!(budget.reserve(50).is_none());
        }
        assert_eq!(budget.used(), 80);
        drop(held);
        assert_eq!(budget.used(), 0);
    }
}
