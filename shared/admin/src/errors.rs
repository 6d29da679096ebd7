//! The upstream `testlists` service's error bodies (`common/errors.py`): status 400 with
//! `{"detail": {"description", "err_args", "err_str"}}`, where `err_str` is the stable code the
//! test-lists editor UI translates.

use ooni_platform::error::{ApiError, ErrorBody};
use serde_json::{json, Value};

/// One upstream error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OoniError {
    BadUrl,
    BadCategoryCode,
    BadDate,
    CountryNotSupported,
    InvalidCountryCode,
    DuplicateUrl,
    DuplicateRule,
    RuleNotFound,
    CannotClosePr,
    CannotUpdateList,
    CannotProposeChanges,
    NoProposedChanges,
    InvalidPullRequestState,
}

impl OoniError {
    pub fn err_str(self) -> &'static str {
        match self {
            OoniError::BadUrl => "err_bad_url",
            OoniError::BadCategoryCode => "err_bad_category_code",
            OoniError::BadDate => "err_bad_date",
            OoniError::CountryNotSupported => "err_country_not_supported",
            OoniError::InvalidCountryCode => "err_invalid_country_code",
            OoniError::DuplicateUrl => "err_duplicate_url",
            OoniError::DuplicateRule => "err_duplicate_rule",
            OoniError::RuleNotFound => "err_rule_not_found",
            OoniError::CannotClosePr => "err_cannot_close_pr",
            OoniError::CannotUpdateList => "err_cannot_update_list",
            OoniError::CannotProposeChanges => "err_cannot_propose_changes",
            OoniError::NoProposedChanges => "err_no_proposed_changes",
            OoniError::InvalidPullRequestState => "err_invalid_pr_state",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            OoniError::BadUrl => "Invalid URL",
            OoniError::BadCategoryCode => "Invalid category code",
            OoniError::BadDate => "Invalid date",
            OoniError::CountryNotSupported => "Country Not Supported",
            OoniError::InvalidCountryCode => "Country code is invalid",
            OoniError::DuplicateUrl => "Duplicate URL",
            OoniError::DuplicateRule => "Duplicate rule",
            OoniError::RuleNotFound => "Rule not found error",
            OoniError::CannotClosePr => "Unable to close PR. Please reload data.",
            OoniError::CannotUpdateList => {
                "Unable to update. The URL list has changed in the meantime."
            }
            OoniError::CannotProposeChanges => "Unable to submit changes. Please try again.",
            OoniError::NoProposedChanges => "No changes are being proposed",
            OoniError::InvalidPullRequestState => {
                "The tracked pull request state is invalid or malformed"
            }
        }
    }

    /// The 400 response, with optional `err_args`.
    pub fn with_args(self, err_args: Option<Value>) -> ApiError {
        ApiError::new(
            http::StatusCode::BAD_REQUEST,
            ErrorBody::Detail(json!({
                "description": self.description(),
                "err_args": err_args,
                "err_str": self.err_str(),
            })),
        )
    }

    pub fn api(self) -> ApiError {
        self.with_args(None)
    }
}

impl From<OoniError> for ApiError {
    fn from(e: OoniError) -> Self {
        e.api()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_the_upstream_detail_shape() {
        let e = OoniError::DuplicateUrl.with_args(Some(json!({"url": "https://x.org/"})));
        assert_eq!(e.status, 400);
        assert_eq!(
            e.body.to_json(),
            json!({"detail": {"description": "Duplicate URL", "err_args": {"url": "https://x.org/"}, "err_str": "err_duplicate_url"}})
        );
        assert_eq!(
            ApiError::from(OoniError::NoProposedChanges).body.to_json()["detail"]["err_args"],
            Value::Null
        );
    }
}
