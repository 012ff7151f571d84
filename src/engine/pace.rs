//! How fast requests go out: as fast as the service allows, and no faster.
//!
//! Three controls, consulted before every request (retries included):
//! - a [`Pause`] of the whole run while a 429's wait, or an exhausted rate-limit window
//!   (`x-ratelimit-remaining-*: 0` until `x-ratelimit-reset-*`), runs out;
//! - the `--ipm` cap, a token bucket (GCRA, from `governor`) that spaces requests evenly;
//! - the [`Window`]: how many requests may be in flight. It starts at `-j`, which stays its
//!   ceiling, halves on a 429 and grows by one after a window's worth of successes (AIMD), so
//!   a run settles just under the service's limit instead of hammering it.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// A pause of the whole run: no request starts before it ends.
#[derive(Debug, Default)]
pub struct Pause {
    until: Mutex<Option<Instant>>,
}

impl Pause {
    /// Extends the pause to at least `wait` from now.
    pub fn extend(&self, wait: Duration) {
        let end = Instant::now() + wait;
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        if until.is_none_or(|u| u < end) {
            *until = Some(end);
        }
    }

    /// Returns once no pause is running.
    pub async fn wait(&self) {
        loop {
            let until = *self.until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(end) if end > Instant::now() => tokio::time::sleep_until(end).await,
                _ => return,
            }
        }
    }
}

/// The `--ipm` cap: requests spaced evenly at `per_minute`, without bursts, since a service
/// that counts per minute often enforces it over a few seconds.
#[derive(Debug)]
pub struct ImageRate {
    limiter: DefaultDirectRateLimiter,
}

impl ImageRate {
    pub fn per_minute(per_minute: NonZeroU32) -> ImageRate {
        let quota = Quota::per_minute(per_minute).allow_burst(NonZeroU32::MIN);
        ImageRate {
            limiter: RateLimiter::direct(quota),
        }
    }

    /// Waits for the next slot and takes it.
    pub async fn take(&self) {
        loop {
            match self.limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// A change of the concurrency window, for the log and the display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub from: usize,
    pub to: usize,
}

#[derive(Debug)]
struct WindowState {
    limit: usize,
    /// Successes since the last change.
    successes: usize,
    /// When the window last shrank: 429s to requests sent before it were caused by the old
    /// window, and do not shrink it again.
    shrunk_at: Option<Instant>,
    /// Slots to take out of use as they come back, after a shrink while they were taken.
    debt: usize,
}

/// How many requests may be in flight: AIMD between 1 and the `-j` ceiling. Requests get
/// their slots first come, first served, so none waits behind later ones for long.
#[derive(Debug)]
pub struct Window {
    ceiling: usize,
    slots: Semaphore,
    state: Mutex<WindowState>,
}

/// A request's place in the window, given back when it is dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    window: &'a Window,
    permit: Option<SemaphorePermit<'a>>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let mut s = self.window.lock();
        if s.debt > 0 {
            s.debt -= 1;
            permit.forget();
        }
    }
}

impl Window {
    pub fn new(ceiling: usize) -> Window {
        let ceiling = ceiling.max(1);
        Window {
            ceiling,
            slots: Semaphore::new(ceiling),
            state: Mutex::new(WindowState {
                limit: ceiling,
                successes: 0,
                shrunk_at: None,
                debt: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// Waits for room in the window, in turn, and takes a slot.
    pub async fn acquire(&self) -> Slot<'_> {
        let permit = self
            .slots
            .acquire()
            .await
            .expect("the window's semaphore is never closed");
        Slot {
            window: self,
            permit: Some(permit),
        }
    }

    /// A request succeeded: after as many successes as the limit, the limit grows by one.
    pub fn succeeded(&self) -> Option<Change> {
        let mut s = self.lock();
        s.successes += 1;
        if s.successes < s.limit || s.limit >= self.ceiling {
            return None;
        }
        let from = s.limit;
        s.limit += 1;
        s.successes = 0;
        if s.debt > 0 {
            s.debt -= 1;
        } else {
            self.slots.add_permits(1);
        }
        Some(Change { from, to: from + 1 })
    }

    /// The service said "too many" to a request sent at `sent`: the limit halves, unless it
    /// already did after that request was sent.
    pub fn rate_limited(&self, sent: Instant) -> Option<Change> {
        let mut s = self.lock();
        s.successes = 0;
        if s.shrunk_at.is_some_and(|at| sent < at) {
            return None;
        }
        let from = s.limit;
        s.limit = (from / 2).max(1);
        s.shrunk_at = Some(Instant::now());
        let cut = from - s.limit;
        // Free slots go now; taken ones as they come back.
        let gone = self.slots.forget_permits(cut);
        s.debt += cut - gone;
        (s.limit != from).then_some(Change { from, to: s.limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_pause_lasts_its_longest_extension() {
        let pause = Pause::default();
        let start = Instant::now();
        pause.extend(Duration::from_secs(3));
        pause.extend(Duration::from_secs(1));
        pause.wait().await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        let again = Instant::now();
        pause.wait().await;
        assert_eq!(
            again.elapsed(),
            Duration::ZERO,
            "an ended pause holds nothing"
        );
    }

    #[tokio::test]
    async fn the_window_holds_at_most_its_limit() {
        let w = Window::new(2);
        let a = w.acquire().await;
        let _b = w.acquire().await;
        let third = tokio::time::timeout(Duration::from_millis(50), w.acquire()).await;
        assert!(third.is_err(), "a third request waits");
        drop(a);
        let third = tokio::time::timeout(Duration::from_millis(50), w.acquire()).await;
        assert!(third.is_ok(), "and goes once a slot is free");
    }

    #[tokio::test]
    async fn aimd_halves_on_a_429_and_climbs_back_by_one() {
        let w = Window::new(16);
        let sent = Instant::now();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(w.rate_limited(sent), Some(Change { from: 16, to: 8 }));
        // Other 429s to requests sent before the cut were caused by the old window.
        assert_eq!(w.rate_limited(sent), None);
        assert_eq!(w.limit(), 8);
        let later = Instant::now();
        assert_eq!(w.rate_limited(later), Some(Change { from: 8, to: 4 }));
        for _ in 0..3 {
            assert_eq!(w.succeeded(), None);
        }
        assert_eq!(w.succeeded(), Some(Change { from: 4, to: 5 }));
        for _ in 0..200 {
            w.succeeded();
        }
        assert_eq!(w.limit(), 16, "never above the ceiling");
        let mut floor = Window::new(1);
        assert_eq!(floor.rate_limited(Instant::now()), None, "never below one");
        floor = Window::new(3);
        floor.rate_limited(Instant::now());
        assert_eq!(floor.limit(), 1);
    }

    #[tokio::test]
    async fn a_shrink_takes_effect_as_busy_slots_come_back() {
        let w = Window::new(4);
        let mut held: Vec<Slot<'_>> = Vec::new();
        for _ in 0..4 {
            held.push(w.acquire().await);
        }
        w.rate_limited(Instant::now());
        assert_eq!(w.limit(), 2);
        // Three come back: two are retired, one is free again; with the one still held
        // that makes the new limit of two.
        held.truncate(1);
        let _second = tokio::time::timeout(Duration::from_millis(20), w.acquire())
            .await
            .expect("one slot is free");
        let third = tokio::time::timeout(Duration::from_millis(20), w.acquire()).await;
        assert!(third.is_err(), "no third slot");
    }

    #[tokio::test]
    async fn slots_go_first_come_first_served() {
        let w = std::sync::Arc::new(Window::new(1));
        let held = w.acquire().await;
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..4 {
            let (w, order) = (w.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let _slot = w.acquire().await;
                order.lock().unwrap().push(i);
            }));
            // Each waiter queues before the next is spawned.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(held);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn a_grown_window_lets_a_waiting_request_go() {
        let w = std::sync::Arc::new(Window::new(2));
        w.rate_limited(Instant::now());
        let _held = w.acquire().await;
        let waiter = {
            let w = w.clone();
            tokio::spawn(async move {
                let _slot = w.acquire().await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        w.succeeded();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the waiter got the new slot")
            .unwrap();
    }

    #[tokio::test]
    async fn the_image_rate_spaces_requests_evenly() {
        let rate = ImageRate::per_minute(NonZeroU32::new(1200).unwrap());
        let start = std::time::Instant::now();
        for _ in 0..6 {
            rate.take().await;
        }
        // Six requests at 20 per second: the sixth goes 250 ms after the first.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(240), "{elapsed:?}");
    }
}
