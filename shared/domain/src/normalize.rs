//! Normalisation of the probe-claimed country code, ASN and test name when a report is opened
//! (`POST /report`), as upstream `open_report` does before generating the report id.
//!
//! Upstream rules: the ASN is uppercased; when it is longer than 12 or shorter than 3
//! characters or lacks the `AS` prefix it becomes `AS0`, and a non-integer number becomes 0.
//! The CC is uppercased with `_` removed and becomes `ZZ` unless it is 2 characters long.
//!
//! Deliberate deviations, all on inputs no real probe sends, so that the report id we hand out
//! is always URL-safe and ASCII: the ASN number must be plain ASCII digits fitting in 32 bits
//! (Python's `int()` would also take `" 1"`, `"+1"`, `"1_0"` or non-ASCII digits), the CC must
//! be two ASCII letters or digits, and the test name keeps only ASCII letters and digits.

/// The normalised values that go into a report id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReportMeta {
    /// Two ASCII characters, uppercase; `ZZ` when unknown.
    pub cc: String,
    /// 0 when unknown.
    pub asn: u32,
    /// Lowercase, no underscores.
    pub test_name: String,
}

/// `probe_asn` (e.g. `"as30722"`) → 30722; anything malformed → 0.
pub fn normalize_asn(probe_asn: &str) -> u32 {
    let asn = probe_asn.to_uppercase();
    let len = asn.chars().count();
    if !(3..=12).contains(&len) {
        return 0;
    }
    let Some(num) = asn.strip_prefix("AS") else {
        return 0;
    };
    if !num.bytes().all(|c| c.is_ascii_digit()) {
        return 0;
    }
    num.parse::<u32>().unwrap_or(0)
}

/// `probe_cc` (e.g. `"it"`) → `"IT"`; anything that is not two characters → `"ZZ"`.
pub fn normalize_cc(probe_cc: &str) -> String {
    let cc: String = probe_cc
        .to_uppercase()
        .chars()
        .filter(|c| *c != '_')
        .collect();
    if cc.len() == 2 && cc.bytes().all(|c| c.is_ascii_alphanumeric()) {
        cc
    } else {
        "ZZ".to_owned()
    }
}

/// The test name as it appears in a report id: lowercase, without underscores.
pub fn report_id_test_name(test_name: &str) -> String {
    test_name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Normalises all three values for [`crate::ids::generate_report_id`].
pub fn normalize_open_report(probe_cc: &str, probe_asn: &str, test_name: &str) -> OpenReportMeta {
    OpenReportMeta {
        cc: normalize_cc(probe_cc),
        asn: normalize_asn(probe_asn),
        test_name: report_id_test_name(test_name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn_is_uppercased_and_parsed() {
        assert_eq!(normalize_asn("AS30722"), 30722);
        assert_eq!(normalize_asn("as65550"), 65550);
        assert_eq!(normalize_asn("As1"), 1);
    }

    #[test]
    fn asn_outside_three_to_twelve_characters_becomes_zero() {
        assert_eq!(normalize_asn("AS"), 0);
        assert_eq!(normalize_asn(""), 0);
        assert_eq!(normalize_asn("AS1234567890"), 1234567890); // 12 chars
        assert_eq!(normalize_asn("AS12345678901"), 0); // 13 chars
    }

    #[test]
    fn asn_without_as_prefix_or_with_garbage_becomes_zero() {
        assert_eq!(normalize_asn("30722"), 0);
        assert_eq!(normalize_asn("ASX12"), 0);
        assert_eq!(normalize_asn("AS 12"), 0);
        assert_eq!(normalize_asn("AS-12"), 0);
        assert_eq!(normalize_asn("AS9999999999"), 0); // does not fit in 32 bits
    }

    #[test]
    fn cc_is_uppercased_and_loses_underscores() {
        assert_eq!(normalize_cc("it"), "IT");
        assert_eq!(normalize_cc("I_T"), "IT");
        assert_eq!(normalize_cc("_u_s_"), "US");
    }

    #[test]
    fn cc_of_the_wrong_length_becomes_zz() {
        assert_eq!(normalize_cc(""), "ZZ");
        assert_eq!(normalize_cc("ITA"), "ZZ");
        assert_eq!(normalize_cc("I"), "ZZ");
        assert_eq!(normalize_cc("I/"), "ZZ");
        assert_eq!(normalize_cc("éé"), "ZZ");
    }

    #[test]
    fn test_name_loses_underscores_and_case() {
        assert_eq!(report_id_test_name("web_connectivity"), "webconnectivity");
        assert_eq!(report_id_test_name("Web_Connectivity"), "webconnectivity");
        assert_eq!(report_id_test_name(""), "");
    }

    #[test]
    fn open_report_with_defaults_normalises_to_zz_and_zero() {
        let m = normalize_open_report("ZZ", "AS0", "");
        assert_eq!(
            m,
            OpenReportMeta {
                cc: "ZZ".into(),
                asn: 0,
                test_name: String::new()
            }
        );
        let m = normalize_open_report("ie", "AS65550", "web_connectivity");
        assert_eq!(m.cc, "IE");
        assert_eq!(m.asn, 65550);
        assert_eq!(m.test_name, "webconnectivity");
    }
}
