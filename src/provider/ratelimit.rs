//! What `x-ratelimit-*` headers say about the service's rate limits.

use std::time::Duration;

/// What `x-ratelimit-*` headers say: the tightest window that is used up, and when it resets.
/// `remaining` is the smallest count left over all kinds (requests, tokens, images).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub remaining: u64,
    /// When the kind with the fewest left is full again.
    pub reset: Duration,
    /// For requests and images, limited per minute: the time one more takes to come back.
    pub one_back: Option<Duration>,
}

impl RateLimitInfo {
    /// Reads the headers through `header(name)`; `None` without any `remaining` header.
    pub fn from_headers<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Option<RateLimitInfo> {
        let mut tightest: Option<RateLimitInfo> = None;
        for kind in ["requests", "images", "tokens"] {
            let remaining = header(&format!("x-ratelimit-remaining-{kind}"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            let Some(remaining) = remaining else { continue };
            let reset = header(&format!("x-ratelimit-reset-{kind}"))
                .and_then(parse_reset)
                .unwrap_or(Duration::ZERO);
            let one_back = header(&format!("x-ratelimit-limit-{kind}"))
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|limit| *limit > 0 && kind != "tokens")
                .map(|limit| Duration::from_secs(60) / limit);
            let info = RateLimitInfo {
                remaining,
                reset,
                one_back,
            };
            tightest = Some(match tightest {
                Some(t) if t.remaining < remaining => t,
                Some(t) if t.remaining == remaining && t.reset >= reset => t,
                _ => info,
            });
        }
        tightest
    }

    /// The wait before another request, when the window is used up: until one more comes
    /// back where the limit says how fast they do, else until the window is full again.
    pub fn exhausted_for(&self) -> Option<Duration> {
        if self.remaining > 0 || self.reset.is_zero() {
            return None;
        }
        Some(self.one_back.map_or(self.reset, |one| one.min(self.reset)))
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
        assert_eq!(info.remaining, 0);
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
        let plenty = [("x-ratelimit-remaining-requests", "12")];
        let get = |name: &str| plenty.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        assert_eq!(
            RateLimitInfo::from_headers(get).unwrap().exhausted_for(),
            None
        );
    }
}
