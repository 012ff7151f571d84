//! What the service says about its rate limits: the `x-ratelimit-*` headers, and the limit an
//! error message names.

use std::time::Duration;

/// What `x-ratelimit-*` headers say: the tightest window and when it resets, and how many
/// requests (or images) a minute the account may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// The smallest count left over all kinds (requests, images, tokens); `None` when no
    /// `x-ratelimit-remaining-*` header came.
    pub remaining: Option<u64>,
    /// When the kind with the fewest left is full again.
    pub reset: Duration,
    /// Whether the kind with the fewest left counts requests or images (not tokens): only
    /// such a window gets one back every `60 s / per_minute`.
    pub counts_requests: bool,
    /// The tightest of `x-ratelimit-limit-requests` and `x-ratelimit-limit-images`, which
    /// count per minute (a 429's message may say it too). Tokens are not requests: their
    /// limit is left out.
    pub per_minute: Option<u32>,
}

impl RateLimitInfo {
    /// Reads the headers through `header(name)`; `None` without any `remaining` or `limit`
    /// header.
    pub fn from_headers<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Option<RateLimitInfo> {
        let mut tightest: Option<(u64, Duration, bool)> = None;
        let mut per_minute: Option<u32> = None;
        for kind in ["requests", "images", "tokens"] {
            if kind != "tokens"
                && let Some(limit) = header(&format!("x-ratelimit-limit-{kind}"))
                    .and_then(|v| v.trim().parse::<u32>().ok())
                    .filter(|limit| *limit > 0)
            {
                per_minute = Some(per_minute.map_or(limit, |p| p.min(limit)));
            }
            let remaining = header(&format!("x-ratelimit-remaining-{kind}"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            let Some(remaining) = remaining else { continue };
            let reset = header(&format!("x-ratelimit-reset-{kind}"))
                .and_then(parse_reset)
                .unwrap_or(Duration::ZERO);
            tightest = Some(match tightest {
                Some(t) if t.0 < remaining => t,
                Some(t) if t.0 == remaining && t.1 >= reset => t,
                _ => (remaining, reset, kind != "tokens"),
            });
        }
        if tightest.is_none() && per_minute.is_none() {
            return None;
        }
        Some(RateLimitInfo {
            remaining: tightest.map(|t| t.0),
            reset: tightest.map_or(Duration::ZERO, |t| t.1),
            counts_requests: tightest.is_some_and(|t| t.2),
            per_minute,
        })
    }

    /// The time one more request takes to come back, where the limit per minute is known.
    pub fn one_back(&self) -> Option<Duration> {
        self.per_minute
            .map(|limit| Duration::from_secs(60) / limit.max(1))
    }

    /// The wait before another request, when the window is used up: until one more comes
    /// back where the limit says how fast requests do, else (and for a window of tokens)
    /// until the window is full again.
    pub fn exhausted_for(&self) -> Option<Duration> {
        if self.remaining != Some(0) || self.reset.is_zero() {
            return None;
        }
        Some(match self.one_back() {
            Some(one) if self.counts_requests => one.min(self.reset),
            _ => self.reset,
        })
    }
}

/// Reads a reset time as OpenAI writes it: `1s`, `6m0s`, `59.5s`, `120ms`, `1h2m3s`.
pub fn parse_reset(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" | "" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_times_as_openai_writes_them() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("59.5s"), Some(Duration::from_millis(59_500)));
        assert_eq!(parse_reset("120ms"), Some(Duration::from_millis(120)));
        assert_eq!(parse_reset("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_reset("2"), Some(Duration::from_secs(2)));
        for bad in ["", "soon", "1d", "s", "-1s"] {
            assert_eq!(parse_reset(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_tightest_rate_limit_window_wins() {
        let headers = [
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "250ms"),
            ("x-ratelimit-remaining-tokens", "40000"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ];
        let get = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let info = RateLimitInfo::from_headers(get).unwrap();
        assert_eq!(info.remaining, Some(0));
        assert_eq!(info.exhausted_for(), Some(Duration::from_millis(250)));
        let none = |_: &str| None;
        assert_eq!(RateLimitInfo::from_headers(none), None);
        // With the limit known, the wait is for one more request, not the whole window.
        let per_minute = [
            ("x-ratelimit-limit-requests", "600"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "500ms"),
        ];
        let get = |name: &str| per_minute.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let info = RateLimitInfo::from_headers(get).unwrap();
        assert_eq!(info.exhausted_for(), Some(Duration::from_millis(100)));
        // A window of tokens used up comes back on its own reset, whatever the requests do.
        let tokens = [
            ("x-ratelimit-limit-requests", "600"),
            ("x-ratelimit-remaining-requests", "10"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "14s"),
        ];
        let get = |name: &str| tokens.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let info = RateLimitInfo::from_headers(get).unwrap();
        assert_eq!(info.exhausted_for(), Some(Duration::from_secs(14)));
        let plenty = [("x-ratelimit-remaining-requests", "12")];
        let get = |name: &str| plenty.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        assert_eq!(
            RateLimitInfo::from_headers(get).unwrap().exhausted_for(),
            None
        );
    }

    #[test]
    fn the_limit_per_minute_is_the_tightest_of_requests_and_images() {
        let headers = [
            ("x-ratelimit-limit-requests", "5000"),
            ("x-ratelimit-limit-images", "50"),
            ("x-ratelimit-limit-tokens", "10"),
        ];
        let get = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let info = RateLimitInfo::from_headers(get).unwrap();
        assert_eq!(info.per_minute, Some(50), "tokens are not requests");
        assert_eq!(info.remaining, None, "no remaining header came");
        assert_eq!(info.exhausted_for(), None);
        assert_eq!(info.one_back(), Some(Duration::from_millis(1200)));
        let zero = [("x-ratelimit-limit-requests", "0")];
        let get = |name: &str| zero.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        assert_eq!(
            RateLimitInfo::from_headers(get),
            None,
            "a limit of 0 says nothing"
        );
    }
}
