//! OpenAI's error rules: which answers are worth another attempt, which are a refusal, and
//! which stop the whole run.
//!
//! The rules follow the official SDKs: 408, 409, 429 and 5xx are retried, `x-should-retry`
//! overrides the status, and errors no retry can cure — a refused prompt, a bad key, an
//! unknown model, an empty account — are told apart so the run can react to each.

use crate::provider::error::{ApiError, StatusError};
use crate::provider::retry::{Billing, Fatal, Verdict};

/// Classifies an error: our own rules, the server's `x-should-retry` on top.
pub fn classify(err: &ApiError) -> Verdict {
    match err {
        ApiError::Status(s) => classify_status(s),
        other => other.verdict(),
    }
}

/// An error answer with OpenAI's verdict on it.
pub fn judged(s: StatusError) -> ApiError {
    let verdict = classify_status(&s);
    ApiError::Status(Box::new(StatusError { verdict, ..s }))
}

/// The verdict on an error answer, given when it is decoded.
pub fn classify_status(s: &StatusError) -> Verdict {
    let code = s.body.code.as_deref().unwrap_or("");
    let kind = s.body.kind.as_deref().unwrap_or("");
    let fatal = match s.status {
        401 => Some(Fatal::Unauthorized),
        403 => Some(Fatal::Forbidden),
        404 if code == "model_not_found" => Some(Fatal::ModelNotFound),
        // Decided on `code` and `type`: most billing stops are 429s, but older accounts met
        // `billing_hard_limit_reached` as a 400.
        400 | 429 => out_of_credit(code, kind).map(Fatal::NoCredit),
        _ => None,
    };
    let by_status = if let Some(fatal) = fatal {
        Verdict::Fatal(fatal)
    } else if is_refusal(s) {
        Verdict::Refused
    } else if matches!(s.status, 408 | 409 | 429 | 500..) {
        Verdict::Retry
    } else {
        Verdict::Fail
    };
    match (s.should_retry, by_status) {
        // A refusal is never asked again: the same prompt gets the same answer, and a
        // retried refusal may be billed.
        (_, Verdict::Refused) => Verdict::Refused,
        // The server knows best whether asking again can help...
        (Some(true), _) => Verdict::Retry,
        (Some(false), Verdict::Retry) => Verdict::Fail,
        // ...but "do not retry" does not make a fatal error or a refusal less so.
        _ => by_status,
    }
}

/// A refused prompt: DALL-E's `content_policy_violation`, GPT image's `moderation_blocked`.
fn is_refusal(s: &StatusError) -> bool {
    matches!(
        s.body.code.as_deref(),
        Some("content_policy_violation" | "moderation_blocked")
    )
}

/// Which billing stop, if any, an error's `code` and `type` name.
fn out_of_credit(code: &str, kind: &str) -> Option<Billing> {
    let specific = match code {
        "credit_balance_exhausted" => Some(Billing::CreditExhausted),
        "project_spend_limit_exceeded" => Some(Billing::ProjectLimit),
        "organization_spend_limit_exceeded" | "organization_usage_limit_exceeded" => {
            Some(Billing::OrganizationLimit)
        }
        _ => None,
    };
    specific.or_else(|| {
        [code, kind]
            .iter()
            .any(|c| is_out_of_credit(c))
            .then_some(Billing::Unspecified)
    })
}

fn is_out_of_credit(code: &str) -> bool {
    matches!(code, "insufficient_quota" | "billing_hard_limit_reached")
        || code.ends_with("_spend_limit_exceeded")
        || code == "spend_limit_exceeded"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ErrorBody;

    fn status(status: u16, code: Option<&str>, should_retry: Option<bool>) -> ApiError {
        judged(StatusError {
            status,
            body: ErrorBody {
                code: code.map(str::to_owned),
                ..ErrorBody::default()
            },
            request_id: None,
            retry_after: None,
            should_retry,
            rate_limit: None,
            verdict: Verdict::Fail,
        })
    }

    #[test]
    fn retryable_statuses_and_failures_without_an_answer() {
        for code in [408, 409, 429, 500, 502, 503, 504, 520] {
            assert_eq!(
                classify(&status(code, None, None)),
                Verdict::Retry,
                "{code}"
            );
        }
        assert_eq!(
            classify(&status(429, Some("rate_limit_exceeded"), None)),
            Verdict::Retry
        );
        for err in [
            ApiError::Timeout { secs: 1 },
            ApiError::Connect {
                host: "h".into(),
                detail: "refused".into(),
            },
            ApiError::Transport {
                detail: "closed".into(),
            },
            ApiError::BadAnswer {
                reason: "not JSON".into(),
                request_id: None,
                usage: None,
            },
        ] {
            assert_eq!(classify(&err), Verdict::Retry, "{err}");
        }
    }

    #[test]
    fn a_failed_download_is_never_fatal() {
        let download = |status| ApiError::Download {
            status,
            request_id: None,
            usage: None,
        };
        assert_eq!(classify(&download(403)), Verdict::Fail, "an expired link");
        assert_eq!(classify(&download(404)), Verdict::Fail);
        assert_eq!(classify(&download(401)), Verdict::Fail);
        assert_eq!(classify(&download(503)), Verdict::Retry);
    }

    #[test]
    fn bad_requests_fail_the_image_only() {
        for code in [400, 404, 413, 415, 422] {
            assert_eq!(
                classify(&status(code, Some("invalid_value"), None)),
                Verdict::Fail
            );
        }
    }

    #[test]
    fn refusals_are_not_retried() {
        for code in ["content_policy_violation", "moderation_blocked"] {
            assert_eq!(
                classify(&status(400, Some(code), None)),
                Verdict::Refused,
                "{code}"
            );
        }
    }

    #[test]
    fn fatal_errors() {
        use Fatal::*;
        let cases = [
            (401, Some("invalid_api_key"), Unauthorized),
            (401, None, Unauthorized),
            (403, Some("unsupported_country_region_territory"), Forbidden),
            (404, Some("model_not_found"), ModelNotFound),
            (
                429,
                Some("insufficient_quota"),
                NoCredit(Billing::Unspecified),
            ),
            (
                429,
                Some("billing_hard_limit_reached"),
                NoCredit(Billing::Unspecified),
            ),
            (
                429,
                Some("monthly_spend_limit_exceeded"),
                NoCredit(Billing::Unspecified),
            ),
            (
                429,
                Some("project_spend_limit_exceeded"),
                NoCredit(Billing::ProjectLimit),
            ),
            // Older accounts met the hard limit as a 400.
            (
                400,
                Some("billing_hard_limit_reached"),
                NoCredit(Billing::Unspecified),
            ),
            (
                429,
                Some("credit_balance_exhausted"),
                NoCredit(Billing::CreditExhausted),
            ),
            (
                429,
                Some("organization_spend_limit_exceeded"),
                NoCredit(Billing::OrganizationLimit),
            ),
            (
                429,
                Some("organization_usage_limit_exceeded"),
                NoCredit(Billing::OrganizationLimit),
            ),
        ];
        for (code, error_code, fatal) in cases {
            assert_eq!(
                classify(&status(code, error_code, None)),
                Verdict::Fatal(fatal),
                "{code} {error_code:?}"
            );
            assert!(!fatal.advice().is_empty());
        }
        // The quota may be named in `type` rather than `code`.
        let err = judged(StatusError {
            status: 429,
            body: ErrorBody {
                kind: Some("insufficient_quota".into()),
                ..ErrorBody::default()
            },
            request_id: None,
            retry_after: None,
            should_retry: None,
            rate_limit: None,
            verdict: Verdict::Fail,
        });
        assert_eq!(
            classify(&err),
            Verdict::Fatal(NoCredit(Billing::Unspecified))
        );
    }

    #[test]
    fn each_billing_code_under_insufficient_quota_has_its_own_advice() {
        let with_type = |status: u16, code: &str| {
            judged(StatusError {
                status,
                body: ErrorBody {
                    kind: Some("insufficient_quota".into()),
                    code: Some(code.into()),
                    ..ErrorBody::default()
                },
                request_id: None,
                retry_after: None,
                should_retry: None,
                rate_limit: None,
                verdict: Verdict::Fail,
            })
        };
        let cases = [
            (
                "credit_balance_exhausted",
                Billing::CreditExhausted,
                "add credit",
            ),
            (
                "project_spend_limit_exceeded",
                Billing::ProjectLimit,
                "project's budget",
            ),
            (
                "organization_spend_limit_exceeded",
                Billing::OrganizationLimit,
                "organization's limit",
            ),
            (
                "organization_usage_limit_exceeded",
                Billing::OrganizationLimit,
                "organization's limit",
            ),
        ];
        for (code, billing, advice) in cases {
            let fatal = Fatal::NoCredit(billing);
            assert_eq!(
                classify(&with_type(429, code)),
                Verdict::Fatal(fatal),
                "{code}"
            );
            assert!(
                fatal.advice().contains(advice),
                "{code}: {}",
                fatal.advice()
            );
        }
        // A 400 billing stop is as fatal as a 429 one.
        assert_eq!(
            classify(&status(400, Some("billing_hard_limit_reached"), None)),
            Verdict::Fatal(Fatal::NoCredit(Billing::Unspecified))
        );
    }

    #[test]
    fn x_should_retry_overrides_the_status() {
        assert_eq!(classify(&status(500, None, Some(false))), Verdict::Fail);
        assert_eq!(classify(&status(429, None, Some(false))), Verdict::Fail);
        assert_eq!(
            classify(&status(400, Some("invalid_value"), Some(true))),
            Verdict::Retry
        );
        assert_eq!(classify(&status(500, None, Some(true))), Verdict::Retry);
        // "false" keeps a fatal error fatal and a refusal a refusal.
        assert_eq!(
            classify(&status(401, None, Some(false))),
            Verdict::Fatal(Fatal::Unauthorized)
        );
        assert_eq!(
            classify(&status(400, Some("moderation_blocked"), Some(false))),
            Verdict::Refused
        );
        // Nor does "true" make a refusal worth asking again.
        for code in ["moderation_blocked", "content_policy_violation"] {
            assert_eq!(
                classify(&status(400, Some(code), Some(true))),
                Verdict::Refused,
                "{code}"
            );
        }
    }
}
