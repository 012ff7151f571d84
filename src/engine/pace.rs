//! How fast requests go out: as fast as the service allows, and no faster.
//!
//! Four controls, consulted before every request (retries included):
//! - a [`Pause`] of the whole run while a 429's wait, or an exhausted rate-limit window
//!   (`x-ratelimit-remaining-*: 0` until `x-ratelimit-reset-*`), runs out. The requests that
//!   waited on it leave one at a time, [`RELEASE_SPACING`] apart, unless a rate is known to
//!   space them;
//! - the [`Rate`]: a token bucket (GCRA, from `governor`) that spaces requests evenly at the
//!   `--ipm` cap or at [`HEADROOM`] of the limit the service showed (its `x-ratelimit-limit-*`
//!   headers, or a 429's "Limit 600"), whichever is lower. Until the service first answers
//!   and nothing is known, requests start [`RAMP`] apart, so that a burst limit below `-j`
//!   shows itself with one 429 rather than `-j` of them;
//! - the [`Window`]: how many requests may be in flight. It starts at `-j`, which stays its
//!   ceiling, halves on a 429 that teaches no rate and grows by one after a window's worth of
//!   successes (AIMD), so a run settles just under a limit it cannot read.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The requests that waited on a pause leave this far apart when no rate spaces them: a
/// service that asked a whole run to wait is not met by all of it at once.
pub const RELEASE_SPACING: Duration = Duration::from_millis(50);

/// The share of the service's limit the run holds to: just under it, so that the jitter of
/// the network does not turn an even pace into 429s.
pub const HEADROOM: f64 = 0.95;

/// Until the service first answers, and while no rate is known, requests start this far
/// apart.
pub const RAMP: Duration = Duration::from_millis(5);

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct PauseState {
    until: Option<Instant>,
    /// When the next request that waited on the pause may leave it.
    next_release: Option<Instant>,
}

/// A pause of the whole run: no request starts before it ends.
#[derive(Debug, Default)]
pub struct Pause {
    state: Mutex<PauseState>,
}

impl Pause {
    /// Extends the pause to at least `wait` from now.
    pub fn extend(&self, wait: Duration) {
        let end = Instant::now() + wait;
        let mut s = locked(&self.state);
        if s.until.is_none_or(|u| u < end) {
            s.until = Some(end);
        }
    }

    /// Whether a pause is running.
    pub fn is_on(&self) -> bool {
        locked(&self.state)
            .until
            .is_some_and(|end| end > Instant::now())
    }

    /// Returns once no pause is running. A request that had to wait, or that comes `in_line`
    /// (a retry the pause was for, whose own wait may end with it), leaves `spacing` after
    /// the one before it.
    pub async fn wait(&self, spacing: Duration, in_line: bool) {
        // Whether it is to take a turn to leave, once no pause holds it.
        let mut waited = in_line;
        loop {
            let until = {
                let mut s = locked(&self.state);
                let now = Instant::now();
                match s.until {
                    Some(end) if end > now => {
                        waited = true;
                        end
                    }
                    _ if waited && !spacing.is_zero() => {
                        // Its turn to leave, taken once: a new pause meanwhile makes it
                        // wait again, and take another.
                        waited = false;
                        let slot = s.next_release.filter(|r| *r > now).unwrap_or(now);
                        s.next_release = Some(slot + spacing);
                        if slot <= now {
                            return;
                        }
                        slot
                    }
                    _ => return,
                }
            };
            tokio::time::sleep_until(until).await;
        }
    }
}

/// What the run learned about the service's limit, for the log and the display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    /// What the service allows a minute.
    pub limit: u32,
    /// The pace the run now holds, a minute.
    pub pace: f64,
}

#[derive(Debug)]
struct RateState {
    /// The service's limit a minute, once it showed it.
    learned: Option<u32>,
    /// Spaces requests at the pace; rebuilt when the pace changes.
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// Whether the ramp of the start is over: the service answered, or showed its limit.
    settled: bool,
    /// The start of the next request during the ramp.
    next_start: Option<Instant>,
}

/// The pace of new requests: at most the `--ipm` cap and [`HEADROOM`] of the limit the
/// service showed, spaced evenly, without bursts, since a service that counts per minute
/// often enforces it over a few seconds.
#[derive(Debug)]
pub struct Rate {
    cap: Option<NonZeroU32>,
    state: Mutex<RateState>,
}

impl Rate {
    pub fn new(cap: Option<NonZeroU32>) -> Rate {
        Rate {
            cap,
            state: Mutex::new(RateState {
                learned: None,
                limiter: cap.map(|c| limiter(f64::from(c.get()))),
                settled: false,
                next_start: None,
            }),
        }
    }

    /// The pace for what is known, a minute: `None` for no pace at all. A `--ipm` within the
    /// service's limit is the user's word and kept as it is; the limit is held to with
    /// [`HEADROOM`].
    fn pace(&self, learned: Option<u32>) -> Option<f64> {
        let cap = self.cap.map(|c| c.get());
        match (cap, learned) {
            (Some(c), Some(l)) if c <= l => Some(f64::from(c)),
            (_, Some(l)) => Some((f64::from(l) * HEADROOM).max(0.1)),
            (c, None) => c.map(f64::from),
        }
    }

    /// Whether a pace spaces the requests (`--ipm`, or a limit the service showed).
    pub fn paces(&self) -> bool {
        locked(&self.state).limiter.is_some()
    }

    /// Whether the service showed its limit.
    pub fn is_learned(&self) -> bool {
        locked(&self.state).learned.is_some()
    }

    /// The service answered: the ramp of the start is over.
    pub fn settle(&self) {
        locked(&self.state).settled = true;
    }

    /// The service says it allows `per_minute` requests a minute: from now on the run holds
    /// just under it (or under `--ipm`, if lower). Says what changed, if anything did.
    ///
    /// Only a tighter limit changes the pace: the lowest one shown holds for the rest of the
    /// run. Limits differ per model, and a header may count requests while a 429 counts
    /// images; going back and forth between them would start a fresh bucket each time, and
    /// a fresh bucket lets requests through at once.
    pub fn learn(&self, per_minute: u32) -> Option<Learned> {
        let mut s = locked(&self.state);
        s.settled = true;
        if per_minute == 0 || s.learned.is_some_and(|known| per_minute >= known) {
            return None;
        }
        let before = self.pace(s.learned);
        s.learned = Some(per_minute);
        let pace = self.pace(s.learned)?;
        if before != Some(pace) {
            s.limiter = Some(limiter(pace));
        }
        Some(Learned {
            limit: per_minute,
            pace,
        })
    }

    /// Waits for the next request's turn and takes it.
    pub async fn take(&self) {
        // The ramp of the start.
        let ramp = {
            let mut s = locked(&self.state);
            if s.settled || s.learned.is_some() {
                None
            } else {
                let now = Instant::now();
                let slot = s.next_start.filter(|t| *t > now).unwrap_or(now);
                s.next_start = Some(slot + RAMP);
                Some(slot)
            }
        };
        if let Some(slot) = ramp {
            tokio::time::sleep_until(slot).await;
        }
        loop {
            // Read again on each turn: a pace learned meanwhile replaces the old one.
            let Some(limiter) = locked(&self.state).limiter.clone() else {
                return;
            };
            match limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// An even pace of `per_minute`, one request at a time.
fn limiter(per_minute: f64) -> Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(60.0 / per_minute.max(0.01));
    let quota = Quota::with_period(period)
        .expect("a pace is more than zero")
        .allow_burst(NonZeroU32::MIN);
    Arc::new(RateLimiter::direct(quota))
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
        pause.wait(Duration::ZERO, false).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        let again = Instant::now();
        pause.wait(RELEASE_SPACING, false).await;
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
    async fn the_ipm_cap_spaces_requests_evenly() {
        let rate = Rate::new(NonZeroU32::new(1200));
        let start = std::time::Instant::now();
        for _ in 0..6 {
            rate.take().await;
        }
        // Six requests at 20 per second: the sixth goes 250 ms after the first.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(240), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_leaving_a_pause_go_one_at_a_time() {
        let pause = Arc::new(Pause::default());
        pause.extend(Duration::from_secs(1));
        let start = Instant::now();
        let mut waiters = Vec::new();
        for _ in 0..4 {
            let pause = pause.clone();
            waiters.push(tokio::spawn(async move {
                pause.wait(Duration::from_millis(100), false).await;
                Instant::now()
            }));
        }
        let mut left = Vec::new();
        for w in waiters {
            left.push(w.await.unwrap() - start);
        }
        left.sort();
        let ms: Vec<u128> = left.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [1000, 1100, 1200, 1300]);
        // A retry the pause was for, whose own wait ends now, takes its turn too.
        let now = Instant::now();
        pause.wait(Duration::from_millis(100), true).await;
        assert_eq!(now.elapsed(), Duration::from_millis(100));
        // A new request that finds no pause goes at once.
        let now = Instant::now();
        pause.wait(Duration::from_millis(100), false).await;
        assert_eq!(now.elapsed(), Duration::ZERO);
    }

    #[test]
    fn a_learned_limit_sets_the_pace_just_under_it_or_under_the_cap() {
        let rate = Rate::new(None);
        assert!(!rate.is_learned());
        assert_eq!(
            rate.learn(600),
            Some(Learned {
                limit: 600,
                pace: 570.0
            })
        );
        assert_eq!(rate.learn(600), None, "nothing new");
        assert!(rate.is_learned());
        assert_eq!(
            rate.learn(5000),
            None,
            "a looser limit (another model's) changes nothing"
        );
        assert_eq!(
            rate.learn(60).map(|l| l.pace),
            Some(57.0),
            "a tighter one holds from now on"
        );
        assert_eq!(rate.learn(600), None, "and is not undone by a looser one");
        let capped = Rate::new(NonZeroU32::new(100));
        assert_eq!(
            capped.learn(600).map(|l| l.pace),
            Some(100.0),
            "--ipm is lower"
        );
        assert_eq!(
            capped.learn(60).map(|l| l.pace),
            Some(57.0),
            "the limit is lower"
        );
        let exact = Rate::new(NonZeroU32::new(600));
        assert_eq!(
            exact.learn(600).map(|l| l.pace),
            Some(600.0),
            "--ipm at the limit is kept"
        );
    }

    #[tokio::test]
    async fn a_learned_limit_spaces_the_requests() {
        let rate = Rate::new(None);
        rate.learn(1200);
        let start = std::time::Instant::now();
        for _ in 0..5 {
            rate.take().await;
        }
        // 95% of 20 a second: the fifth goes 4 × 52.6 ms after the first.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(205), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_start_ramps_until_the_service_answers() {
        let rate = Rate::new(None);
        let start = Instant::now();
        for _ in 0..4 {
            rate.take().await;
        }
        assert_eq!(start.elapsed(), RAMP * 3, "the first four, RAMP apart");
        rate.settle();
        let settled = Instant::now();
        for _ in 0..4 {
            rate.take().await;
        }
        assert_eq!(settled.elapsed(), Duration::ZERO, "then no pace at all");
    }
}
