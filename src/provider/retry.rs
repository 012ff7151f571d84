//! What to do after an error, whichever provider judged it ([`Verdict`], [`Fatal`]), how long
//! to wait before another attempt ([`retry_after`], [`RetryPolicy`]).
//!
//! The wait comes from `retry-after-ms` or `retry-after` when the server gives one, as the
//! official OpenAI SDKs read them, else an exponential backoff with jitter. Each provider's
//! own rules for which answers are worth another attempt live with it (`openai::verdict`).

use std::time::{Duration, SystemTime};

use backon::ExponentialBuilder;

/// The longest wait a server may ask for that is honoured as any retry's, as the official
/// SDKs do. A longer one is for `--max-wait` to judge: wait for it, or stop the run.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff, doubled on each retry up to `max_delay`, plus jitter.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    pub const DEFAULT_MAX_RETRIES: u32 = 4;

    pub fn new(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }

    /// The backoff mechanics: exponential from `min_delay`, capped at `max_delay`, each wait
    /// lengthened by a random part of itself so that parallel requests do not retry in step.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_retries as usize)
            .with_jitter()
    }
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy::new(RetryPolicy::DEFAULT_MAX_RETRIES)
    }
}

/// What to do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try the same request again.
    Retry,
    /// The service refused the prompt; asking again gives the same answer.
    Refused,
    /// No request of this run can succeed: stop starting new ones.
    Fatal(Fatal),
    /// This image failed (a bad parameter, say); the others go on.
    Fail,
}

/// Which billing stop an out-of-credit error is, by its `code`: each has its own cure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// `insufficient_quota` alone, `billing_hard_limit_reached`, another spend limit.
    Unspecified,
    /// `credit_balance_exhausted`: the prepaid credit is used up.
    CreditExhausted,
    /// `project_spend_limit_exceeded`: the project's own budget.
    ProjectLimit,
    /// `organization_spend_limit_exceeded`, `organization_usage_limit_exceeded`.
    OrganizationLimit,
}

/// Errors that doom every request of the run, each with what the user can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fatal {
    /// 401: the key is wrong, revoked or missing.
    Unauthorized,
    /// 403: the key may not do this (region, project permissions, unverified organisation).
    Forbidden,
    /// 404 `model_not_found`.
    ModelNotFound,
    /// 429 (or 400) for an empty account or a spend or usage limit reached, with which one
    /// when the service says.
    NoCredit(Billing),
    /// An image arrived but the destination would not take it (a full disk, say): the next
    /// ones would be paid for and lost too.
    CannotSave,
    /// The first requests of the run all failed before reaching the service (connection
    /// refused, DNS, TLS, a proxy refusing): the next would too.
    Unreachable,
    /// The service asks for a longer wait than `--max-wait`.
    WaitTooLong,
    /// Gemini's daily quota (requests per day) is used up: it resets at midnight Pacific.
    DailyQuota,
    /// Gemini did not accept the key (`API_KEY_INVALID`, 401).
    GeminiUnauthorized,
    /// Gemini's 403 `PERMISSION_DENIED`: the key may not call the Gemini API.
    GeminiForbidden,
}

impl Fatal {
    /// What to do about it, as one sentence.
    pub fn advice(self) -> &'static str {
        match self {
            Fatal::Unauthorized => {
                "the API key was not accepted: check OPENAI_API_KEY (or --api-key) and that the \
                 key has not been revoked"
            }
            Fatal::Forbidden => {
                "the API key may not make this request: check the key's project and \
                 organization permissions, and that the organization is verified for this model"
            }
            Fatal::ModelNotFound => {
                "the model does not exist or this key cannot use it: pick a live model with \
                 --model (genimg models lists them)"
            }
            Fatal::NoCredit(Billing::Unspecified) => {
                "the account is out of credit or over its spend limit: add credit or raise the \
                 limit in the billing settings, then run the same command again; images \
                 already made are kept"
            }
            Fatal::NoCredit(Billing::CreditExhausted) => {
                "the account's credit balance is used up: add credit in the organization's \
                 billing settings, then run the same command again; images already made are \
                 kept"
            }
            Fatal::NoCredit(Billing::ProjectLimit) => {
                "the project has reached its spend limit: raise the project's budget in its \
                 limits settings (or use a key of another project), then run the same command \
                 again; images already made are kept"
            }
            Fatal::NoCredit(Billing::OrganizationLimit) => {
                "the organization has reached its spend or usage limit: raise the \
                 organization's limit in its billing limits settings, then run the same \
                 command again; images already made are kept"
            }
            Fatal::CannotSave => {
                "the destination would not take an image (a full disk?): make room or choose \
                 another --dst-dir, then run the same command again; an image that arrived \
                 but could not be saved was kept where its failure says"
            }
            Fatal::Unreachable => {
                "the service could not be reached: check --base-url (or OPENAI_BASE_URL, or \
                 the Azure endpoint; --gemini-base-url or GEMINI_BASE_URL for Gemini), the \
                 proxy settings (HTTPS_PROXY, NO_PROXY) and the \
                 network, then run the same command again"
            }
            Fatal::GeminiUnauthorized => {
                "Google did not accept the Gemini API key: check GEMINI_API_KEY (or \
                 GOOGLE_API_KEY, or --gemini-api-key) and that the key has not been deleted"
            }
            Fatal::GeminiForbidden => {
                "the Gemini API key may not make this request: check in Google Cloud that the \
                 Generative Language API is enabled for the key's project and that the key is \
                 restricted to generativelanguage.googleapis.com (unrestricted keys are \
                 refused)"
            }
            Fatal::DailyQuota => {
                "the daily quota (requests per day for this model) is used up: it resets at \
                 midnight Pacific time; run the same command after that, or use a project \
                 with a higher tier; images already made are kept"
            }
            Fatal::WaitTooLong => {
                "the service asks for a longer wait than --max-wait allows: run the same \
                 command after that wait (or raise --max-wait to sit it out); images already \
                 made are kept"
            }
        }
    }
}

/// The wait a server asks for: `retry-after-ms` (milliseconds), else `retry-after` (seconds,
/// possibly fractional, or an HTTP date). A wait of zero or in the past, or a value that
/// cannot be read, counts as none. A wait longer than [`MAX_RETRY_AFTER`] is kept whole: the
/// caller decides what to do about it.
pub fn retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    let from_ms = retry_after_ms
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|ms| seconds(ms / 1000.0));
    from_ms.or_else(|| {
        let v = retry_after?.trim();
        match v.parse::<f64>() {
            Ok(secs) => seconds(secs),
            Err(_) => {
                let at = jiff::fmt::rfc2822::DateTimeParser::new()
                    .parse_timestamp(v)
                    .ok()?;
                let now = jiff::Timestamp::try_from(now).ok()?;
                seconds(at.duration_since(now).as_secs_f64())
            }
        }
    })
}

fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_its_three_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 21 Oct 2015 07:28:00
        let d = |ms: Option<&str>, s: Option<&str>| retry_after(ms, s, now);
        assert_eq!(d(Some("1500"), None), Some(Duration::from_millis(1500)));
        assert_eq!(d(Some("250.5"), None), Some(Duration::from_micros(250_500)));
        assert_eq!(d(None, Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(d(None, Some(" 0.25 ")), Some(Duration::from_millis(250)));
        assert_eq!(
            d(None, Some("Wed, 21 Oct 2015 07:28:30 GMT")),
            Some(Duration::from_secs(30))
        );
        // retry-after-ms wins over retry-after.
        assert_eq!(d(Some("100"), Some("5")), Some(Duration::from_millis(100)));
        // An unreadable retry-after-ms falls back to retry-after.
        assert_eq!(d(Some("soon"), Some("3")), Some(Duration::from_secs(3)));
    }

    #[test]
    fn retry_after_that_cannot_be_used() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let d = |ms: Option<&str>, s: Option<&str>| retry_after(ms, s, now);
        assert_eq!(d(None, None), None);
        assert_eq!(d(None, Some("0")), None);
        assert_eq!(d(None, Some("-3")), None);
        assert_eq!(d(Some("0"), None), None);
        assert_eq!(d(None, Some("NaN")), None);
        assert_eq!(d(None, Some("inf")), None);
        assert_eq!(d(None, Some("tomorrow")), None);
        assert_eq!(d(None, Some("Wed, 21 Oct 2015 07:27:00 GMT")), None, "past");
        // Long waits are kept whole, for --max-wait to judge.
        assert_eq!(d(None, Some("3600")), Some(Duration::from_secs(3600)));
        assert_eq!(
            d(Some("1e15"), None),
            Some(Duration::from_secs(1_000_000_000))
        );
    }

    #[test]
    fn the_backoff_grows_is_capped_and_stops_after_max_retries() {
        let policy = RetryPolicy::new(6);
        let waits: Vec<Duration> = backon::BackoffBuilder::build(policy.backoff()).collect();
        assert_eq!(waits.len(), 6);
        for (i, w) in waits.iter().enumerate() {
            let base = (policy.min_delay * 2u32.pow(i as u32)).min(policy.max_delay);
            assert!(
                *w >= base && *w <= base * 2,
                "wait {i}: {w:?} for base {base:?}"
            );
        }
        assert_eq!(
            backon::BackoffBuilder::build(RetryPolicy::new(0).backoff()).count(),
            0
        );
    }
}
