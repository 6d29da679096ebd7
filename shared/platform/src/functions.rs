//! The one table of deployed functions: every Lambda, what triggers it (HTTP routes, the
//! submissions queue, a schedule), which binary serves it and what it may touch.
//!
//! The local dev server mounts the HTTP routes from here, `ooni template` generates the functions
//! of `template.yaml` from here, and a test parses `template.yaml` back and checks both agree.

/// Which release binary (one per tier/area) carries a function's handler. Each deployed function
/// runs one of these binaries with `OONI_FUNCTION` set to its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Binary {
    /// Tier-0 probe services: check-in, reports, submissions, probe auth, test lists.
    Probe,
    /// Tier-1 read API: measurements, aggregation, Explorer statistics.
    Api,
    /// Accounts, OONI Run links, findings, measurement feedback.
    Accounts,
    /// Admin routes: prioritization rules, test-list editor.
    Admin,
    /// The SQS-triggered scorer.
    Fastpath,
    /// Scheduled jobs: uploader, test lists, fingerprints, GeoIP, backups, helpers, VPN config.
    Jobs,
}

impl Binary {
    pub const ALL: [Binary; 6] = [
        Binary::Probe,
        Binary::Api,
        Binary::Accounts,
        Binary::Admin,
        Binary::Fastpath,
        Binary::Jobs,
    ];

    /// Cargo binary name; `cargo lambda build` puts it at `target/lambda/<name>/bootstrap`.
    pub fn bin_name(self) -> &'static str {
        match self {
            Binary::Probe => "ooni-probe-fn",
            Binary::Api => "ooni-api-fn",
            Binary::Accounts => "ooni-accounts-fn",
            Binary::Admin => "ooni-admin-fn",
            Binary::Fastpath => "ooni-fastpath-fn",
            Binary::Jobs => "ooni-jobs-fn",
        }
    }
}

/// Isolation tier: tier 0 (probes, scoring) must never be starved by tier 1 (queries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Zero,
    One,
    Ops,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Some(Method::Get),
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }
}

/// What invokes a function.
#[derive(Clone, Copy, Debug)]
pub enum Trigger {
    /// HTTP routes (API Gateway HttpApi), path templates in API Gateway syntax (`{param}`).
    Http(&'static [(Method, &'static str)]),
    /// The submissions queue (batch, with partial batch failures).
    SubmissionsQueue,
    /// An EventBridge schedule expression such as `rate(1 hour)`.
    Schedule(&'static str),
    /// Invoked by the deployment (CloudFormation custom resource) or by hand.
    Deploy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    Incoming,
    Data,
    Config,
    Backup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Quotas,
    Oonirun,
    Findings,
    Accounts,
    Editor,
}

/// A permission a function needs. The template turns each into a least-privilege policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// ClickHouse over HTTPS (network + the password parameter in SSM).
    ClickHouse,
    Read(Bucket),
    Write(Bucket),
    /// Delete objects (the uploader removes incoming objects once uploaded).
    Delete(Bucket),
    SendSubmission,
    ConsumeSubmissions,
    ReadTable(Table),
    WriteTable(Table),
    SendEmail,
    /// Objects under this key prefix of the bucket are read and written by this function only:
    /// every other function with access to the bucket is denied them (secrets such as the test
    /// helpers' TLS private key).
    Private(Bucket, &'static str),
}

/// The private prefixes of `bucket` owned by functions other than `name`.
pub fn private_prefixes_of_others(name: &str, bucket: Bucket) -> Vec<&'static str> {
    FUNCTIONS
        .iter()
        .filter(|f| f.name != name)
        .flat_map(|f| f.access.iter())
        .filter_map(|a| match *a {
            Access::Private(b, prefix) if b == bucket => Some(prefix),
            _ => None,
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
pub struct FunctionSpec {
    /// Logical name, also the CloudFormation logical id prefix and the `OONI_FUNCTION` value.
    pub name: &'static str,
    pub binary: Binary,
    pub trigger: Trigger,
    pub access: &'static [Access],
    pub tier: Tier,
    /// Whether per-client quotas apply (tier-1 query routes).
    pub metered: bool,
    pub memory_mb: u32,
    pub timeout_s: u32,
}

/// One HTTP route, derived from [`FUNCTIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub function: &'static str,
}

use Access::*;
use Binary as B;

const fn http(
    name: &'static str,
    binary: Binary,
    routes: &'static [(Method, &'static str)],
    access: &'static [Access],
    tier: Tier,
    metered: bool,
) -> FunctionSpec {
    FunctionSpec {
        name,
        binary,
        trigger: Trigger::Http(routes),
        access,
        tier,
        metered,
        memory_mb: 256,
        timeout_s: 29,
    }
}

const fn probe(
    name: &'static str,
    routes: &'static [(Method, &'static str)],
    access: &'static [Access],
) -> FunctionSpec {
    http(name, B::Probe, routes, access, Tier::Zero, false)
}

const fn api(name: &'static str, routes: &'static [(Method, &'static str)]) -> FunctionSpec {
    http(
        name,
        B::Api,
        routes,
        &[
            ClickHouse,
            ReadTable(Table::Quotas),
            WriteTable(Table::Quotas),
        ],
        Tier::One,
        true,
    )
}

const fn api_with(
    name: &'static str,
    routes: &'static [(Method, &'static str)],
    access: &'static [Access],
) -> FunctionSpec {
    http(name, B::Api, routes, access, Tier::One, true)
}

const fn accounts(
    name: &'static str,
    routes: &'static [(Method, &'static str)],
    access: &'static [Access],
) -> FunctionSpec {
    http(name, B::Accounts, routes, access, Tier::One, false)
}

const fn admin(
    name: &'static str,
    routes: &'static [(Method, &'static str)],
    access: &'static [Access],
) -> FunctionSpec {
    http(name, B::Admin, routes, access, Tier::One, false)
}

const fn job(
    name: &'static str,
    schedule: &'static str,
    access: &'static [Access],
    timeout_s: u32,
) -> FunctionSpec {
    FunctionSpec {
        name,
        binary: B::Jobs,
        trigger: Trigger::Schedule(schedule),
        access,
        tier: Tier::Ops,
        metered: false,
        memory_mb: 1024,
        timeout_s,
    }
}

use Method::{Get, Post, Put};

const ROLES: &[Access] = &[ReadTable(Table::Accounts)];
const MEASUREMENT_BODY: &[Access] = &[
    ClickHouse,
    Read(Bucket::Incoming),
    Read(Bucket::Data),
    ReadTable(Table::Quotas),
    WriteTable(Table::Quotas),
];

/// Every deployed function. Order is the order of `template.yaml`.
pub const FUNCTIONS: &[FunctionSpec] = &[
    // ---- Tier 0: probe services -------------------------------------------------------------
    probe(
        "Health",
        &[(Get, "/health")],
        &[ClickHouse, Read(Bucket::Config)],
    ),
    probe("Version", &[(Get, "/version")], &[]),
    probe(
        "CheckIn",
        &[(Post, "/api/v1/check-in"), (Post, "/api/_/check-in")],
        &[ClickHouse, Read(Bucket::Config)],
    ),
    probe("ReportOpen", &[(Post, "/report")], &[]),
    FunctionSpec {
        memory_mb: 512,
        ..probe(
            "ReportSubmit",
            &[(Post, "/report/{report_id}")],
            // Delete: a body stored before a failed enqueue is removed so the retry leaves no duplicate.
            &[
                Write(Bucket::Incoming),
                Delete(Bucket::Incoming),
                SendSubmission,
                Read(Bucket::Config),
            ],
        )
    },
    probe("ReportClose", &[(Post, "/report/{report_id}/close")], &[]),
    probe(
        "TestHelpers",
        &[(Get, "/api/v1/test-helpers")],
        &[Read(Bucket::Config)],
    ),
    probe("Collectors", &[(Get, "/api/v1/collectors")], &[]),
    probe("BouncerNetTests", &[(Post, "/bouncer/net-tests")], &[]),
    probe(
        "VpnConfig",
        &[(Get, "/api/v2/ooniprobe/vpn-config/{provider}")],
        &[Read(Bucket::Config)],
    ),
    probe(
        "TestListUrls",
        &[(Get, "/api/v1/test-list/urls")],
        &[ClickHouse],
    ),
    probe(
        "TorTargets",
        &[(Get, "/api/v1/test-list/tor-targets")],
        &[Read(Bucket::Config)],
    ),
    probe(
        "PsiphonConfig",
        &[(Get, "/api/v1/test-list/psiphon-config")],
        &[Read(Bucket::Config)],
    ),
    probe("ProbeRegister", &[(Post, "/api/v1/register")], &[]),
    probe("ProbeLogin", &[(Post, "/api/v1/login")], &[]),
    probe("ProbeUpdate", &[(Put, "/api/v1/update/{client_id}")], &[]),
    probe(
        "GeoLookup",
        &[(Post, "/api/v1/geolookup")],
        &[Read(Bucket::Config)],
    ),
    probe("CheckReportId", &[(Get, "/api/_/check_report_id")], &[]),
    probe("RobotsTxt", &[(Get, "/robots.txt")], &[]),
    probe(
        "ApiSpec",
        &[(Get, "/apispec_1.json"), (Get, "/apispec.json")],
        &[],
    ),
    // ---- Tier 0: scoring ----------------------------------------------------------------------
    FunctionSpec {
        name: "Scorer",
        binary: B::Fastpath,
        trigger: Trigger::SubmissionsQueue,
        access: &[
            ClickHouse,
            ConsumeSubmissions,
            Read(Bucket::Incoming),
            Read(Bucket::Data),
        ],
        tier: Tier::Zero,
        metered: false,
        memory_mb: 1024,
        timeout_s: 60,
    },
    // ---- Tier 1: measurements and aggregation -------------------------------------------------
    api("ListMeasurements", &[(Get, "/api/v1/measurements")]),
    api_with(
        "GetMeasurement",
        &[(Get, "/api/v1/measurement/{measurement_uid}")],
        MEASUREMENT_BODY,
    ),
    api_with(
        "RawMeasurement",
        &[(Get, "/api/v1/raw_measurement")],
        MEASUREMENT_BODY,
    ),
    api_with(
        "MeasurementMeta",
        &[(Get, "/api/v1/measurement_meta")],
        MEASUREMENT_BODY,
    ),
    api("Aggregation", &[(Get, "/api/v1/aggregation")]),
    api("TorsfStats", &[(Get, "/api/v1/torsf_stats")]),
    api("StatsAsnByMonth", &[(Get, "/api/_/asn_by_month")]),
    api(
        "StatsCountriesByMonth",
        &[(Get, "/api/_/countries_by_month")],
    ),
    api("StatsTestNames", &[(Get, "/api/_/test_names")]),
    api("StatsCountries", &[(Get, "/api/_/countries")]),
    api("StatsTestCoverage", &[(Get, "/api/_/test_coverage")]),
    api("StatsWebsiteNetworks", &[(Get, "/api/_/website_networks")]),
    api("StatsWebsiteStats", &[(Get, "/api/_/website_stats")]),
    api("StatsWebsiteUrls", &[(Get, "/api/_/website_urls")]),
    api("StatsVanillaTor", &[(Get, "/api/_/vanilla_tor_stats")]),
    api("StatsImNetworks", &[(Get, "/api/_/im_networks")]),
    api("StatsImStats", &[(Get, "/api/_/im_stats")]),
    api("StatsNetworkStats", &[(Get, "/api/_/network_stats")]),
    api("StatsCountryOverview", &[(Get, "/api/_/country_overview")]),
    api("StatsGlobalOverview", &[(Get, "/api/_/global_overview")]),
    api(
        "StatsGlobalOverviewByMonth",
        &[(Get, "/api/_/global_overview_by_month")],
    ),
    api(
        "StatsCircumventionByCountry",
        &[(Get, "/api/_/circumvention_stats_by_country")],
    ),
    api(
        "StatsCircumventionRuntime",
        &[(Get, "/api/_/circumvention_runtime_stats")],
    ),
    api("StatsDomainMetadata", &[(Get, "/api/_/domain_metadata")]),
    api("StatsAsnmeta", &[(Get, "/api/_/asnmeta")]),
    api("StatsNetworks", &[(Get, "/api/_/networks")]),
    api("StatsDomains", &[(Get, "/api/_/domains")]),
    // Admin-only (a valid admin session is required), so not metered.
    FunctionSpec {
        metered: false,
        ..api_with(
            "QuotasSummary",
            &[(Get, "/api/_/quotas_summary")],
            &[ReadTable(Table::Quotas), ReadTable(Table::Accounts)],
        )
    },
    // ---- Accounts, OONI Run, findings, feedback -------------------------------------------------
    accounts(
        "UserRegister",
        &[(Post, "/api/v1/user_register")],
        &[SendEmail],
    ),
    accounts("UserLogin", &[(Get, "/api/v1/user_login")], ROLES),
    accounts(
        "UserRefreshToken",
        &[(Get, "/api/v1/user_refresh_token")],
        ROLES,
    ),
    accounts(
        "AccountMetadata",
        &[(Get, "/api/_/account_metadata")],
        ROLES,
    ),
    accounts(
        "AuthUserLogin",
        &[(Post, "/api/v2/ooniauth/user-login")],
        &[SendEmail],
    ),
    accounts(
        "AuthUserSession",
        &[
            (Post, "/api/v2/ooniauth/user-session"),
            (Get, "/api/v2/ooniauth/user-session"),
        ],
        ROLES,
    ),
    accounts(
        "SetAccountRole",
        &[(Post, "/api/v1/set_account_role")],
        &[ReadTable(Table::Accounts), WriteTable(Table::Accounts)],
    ),
    accounts(
        "GetAccountRole",
        &[(Get, "/api/v1/get_account_role/{email_address}")],
        ROLES,
    ),
    accounts(
        "SetSessionExpunge",
        &[(Post, "/api/v1/set_session_expunge")],
        &[ReadTable(Table::Accounts), WriteTable(Table::Accounts)],
    ),
    accounts(
        "OonirunCreate",
        &[(Post, "/api/v2/oonirun/links")],
        &[
            ReadTable(Table::Accounts),
            ReadTable(Table::Oonirun),
            WriteTable(Table::Oonirun),
        ],
    ),
    accounts(
        "OonirunEdit",
        &[(Put, "/api/v2/oonirun/links/{oonirun_link_id}")],
        &[
            ReadTable(Table::Accounts),
            ReadTable(Table::Oonirun),
            WriteTable(Table::Oonirun),
        ],
    ),
    accounts(
        "OonirunGet",
        &[(Get, "/api/v2/oonirun/links/{oonirun_link_id}")],
        &[ReadTable(Table::Oonirun), ReadTable(Table::Accounts)],
    ),
    accounts(
        "OonirunFullDescriptor",
        &[(
            Get,
            "/api/v2/oonirun/links/{oonirun_link_id}/full-descriptor/{revision_number}",
        )],
        &[ReadTable(Table::Oonirun), ReadTable(Table::Accounts)],
    ),
    accounts(
        "OonirunEngineDescriptor",
        &[(
            Post,
            "/api/v2/oonirun/links/{oonirun_link_id}/engine-descriptor/{revision_number}",
        )],
        &[ReadTable(Table::Oonirun), ClickHouse],
    ),
    accounts(
        "OonirunRevisions",
        &[(Get, "/api/v2/oonirun/links/{oonirun_link_id}/revisions")],
        &[ReadTable(Table::Oonirun)],
    ),
    accounts(
        "OonirunList",
        &[(Get, "/api/v2/oonirun/links")],
        &[ReadTable(Table::Oonirun), ReadTable(Table::Accounts)],
    ),
    accounts(
        "IncidentsSearch",
        &[(Get, "/api/v1/incidents/search")],
        &[ReadTable(Table::Findings), ReadTable(Table::Accounts)],
    ),
    accounts(
        "IncidentsShow",
        &[(Get, "/api/v1/incidents/show/{incident_id}")],
        &[ReadTable(Table::Findings), ReadTable(Table::Accounts)],
    ),
    accounts(
        "IncidentsWrite",
        &[
            (Post, "/api/v1/incidents/create"),
            (Post, "/api/v1/incidents/update"),
            (Post, "/api/v1/incidents/delete"),
            (Post, "/api/v1/incidents/publish"),
            (Post, "/api/v1/incidents/unpublish"),
        ],
        &[
            ReadTable(Table::Findings),
            WriteTable(Table::Findings),
            ReadTable(Table::Accounts),
        ],
    ),
    accounts(
        "MeasurementFeedback",
        &[
            (Get, "/api/_/measurement_feedback/{measurement_uid}"),
            (Post, "/api/_/measurement_feedback"),
        ],
        &[ClickHouse, ReadTable(Table::Accounts)],
    ),
    // ---- Admin: prioritization and the test-list editor -----------------------------------------
    admin(
        "UrlPriorities",
        &[
            (Get, "/api/_/url-priorities/list"),
            (Post, "/api/_/url-priorities/update"),
        ],
        &[ClickHouse, ReadTable(Table::Accounts)],
    ),
    admin(
        "DebugPrioritization",
        &[
            (Get, "/api/_/debug_prioritization"),
            (Get, "/api/_/show_countries_prioritization"),
        ],
        &[ClickHouse],
    ),
    admin(
        "UrlSubmission",
        &[
            (Get, "/api/_/url-submission/test-list/{country_code}"),
            (Post, "/api/v1/url-submission/update-url"),
            (Post, "/api/v1/url-submission/submit"),
        ],
        &[
            ClickHouse,
            ReadTable(Table::Accounts),
            ReadTable(Table::Editor),
            WriteTable(Table::Editor),
        ],
    ),
    // ---- Scheduled jobs -----------------------------------------------------------------------
    job(
        "Uploader",
        "rate(1 hour)",
        // Write(Incoming): commit markers under uploader/; Read(Data): stale-marker check.
        &[
            ClickHouse,
            Read(Bucket::Incoming),
            Write(Bucket::Incoming),
            Delete(Bucket::Incoming),
            Read(Bucket::Data),
            Write(Bucket::Data),
        ],
        900,
    ),
    job("JobCitizenlab", "rate(1 hour)", &[ClickHouse], 300),
    job("JobFingerprints", "rate(6 hours)", &[ClickHouse], 300),
    job("JobAsnmeta", "rate(1 day)", &[ClickHouse], 600),
    job(
        "JobGeoip",
        "rate(1 day)",
        &[Read(Bucket::Config), Write(Bucket::Config)],
        300,
    ),
    job(
        "JobBackup",
        "rate(1 day)",
        &[
            ClickHouse,
            Read(Bucket::Backup),
            Write(Bucket::Backup),
            Write(Bucket::Data),
        ],
        900,
    ),
    job(
        "JobTestHelperRotation",
        "rate(1 hour)",
        // rotation/tls/: the helpers' certificate and private key, and the ACME account.
        &[
            ClickHouse,
            Read(Bucket::Config),
            Write(Bucket::Config),
            Private(Bucket::Config, "rotation/tls/"),
        ],
        900,
    ),
    job(
        "JobVpnCredentials",
        "rate(1 day)",
        &[Read(Bucket::Config), Write(Bucket::Config)],
        120,
    ),
    FunctionSpec {
        name: "Migrate",
        binary: B::Jobs,
        trigger: Trigger::Deploy,
        access: &[ClickHouse],
        tier: Tier::Ops,
        metered: false,
        memory_mb: 256,
        timeout_s: 300,
    },
];

/// Looks a function up by name.
pub fn function(name: &str) -> Option<&'static FunctionSpec> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Every HTTP route of every function, in table order.
pub fn routes() -> Vec<Route> {
    FUNCTIONS
        .iter()
        .flat_map(|f| match f.trigger {
            Trigger::Http(rs) => rs
                .iter()
                .map(|&(method, path)| Route {
                    method,
                    path,
                    function: f.name,
                })
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn function_names_are_unique_and_alphanumeric() {
        let mut seen = HashSet::new();
        for f in FUNCTIONS {
            assert!(seen.insert(f.name), "duplicate function {}", f.name);
            assert!(
                f.name.chars().all(|c| c.is_ascii_alphanumeric()),
                "{}",
                f.name
            );
        }
    }

    #[test]
    fn no_two_routes_share_a_method_and_path() {
        let mut seen = HashSet::new();
        for r in routes() {
            assert!(
                seen.insert((r.method, r.path)),
                "duplicate route {:?} {}",
                r.method,
                r.path
            );
            assert!(r.path.starts_with('/'));
        }
    }

    #[test]
    fn probe_routes_are_tier_zero_and_unmetered() {
        for f in FUNCTIONS.iter().filter(|f| f.binary == Binary::Probe) {
            assert_eq!(f.tier, Tier::Zero, "{}", f.name);
            assert!(!f.metered, "{}", f.name);
        }
    }
}
