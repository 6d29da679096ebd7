//! A synthetic `fastpath` table for benchmarks: rows shaped like production (time-ordered over
//! about 400 days, ~60 countries with skewed volume, a few hundred networks per country,
//! web_connectivity-heavy test mix over 5000 domains, ~10% anomalies), generated inside
//! ClickHouse with `INSERT … SELECT … FROM numbers()` in batches, so 10M rows need no client
//! bandwidth. Deterministic for a given `anchor` and row count.

use chrono::{DateTime, Utc};

/// Rows per `INSERT … SELECT` (bounds the server's memory per batch).
pub const BATCH_ROWS: u64 = 1_000_000;
/// How far back from the anchor generated measurements go.
pub const SPAN_DAYS: u64 = 400;
/// Number of distinct domains (`www.d<N>.example`) in generated web_connectivity rows.
pub const DOMAINS: u64 = 5000;

/// Appends `rows` synthetic measurements to `fastpath` in the client's database, ending at the
/// current time. Row `n` of a run is `number` `n` of `numbers()`, offset by the rows already
/// present so repeated calls add new measurements.
pub async fn generate_fastpath(client: &clickhouse::Client, rows: u64) -> anyhow::Result<()> {
    generate_fastpath_at(client, rows, Utc::now()).await
}

/// Like [`generate_fastpath`] with an explicit end of the time range.
pub async fn generate_fastpath_at(
    client: &clickhouse::Client,
    rows: u64,
    anchor: DateTime<Utc>,
) -> anyhow::Result<()> {
    let existing: u64 = client
        .query("SELECT count() FROM fastpath")
        .fetch_one()
        .await?;
    let anchor = u32::try_from(anchor.timestamp().max(0))?;
    let mut done = 0u64;
    while done < rows {
        let n = BATCH_ROWS.min(rows - done);
        let first = existing + done;
        client
            .query(INSERT_SQL)
            .bind(anchor)
            .bind(SPAN_DAYS * 86_400)
            .bind(existing)
            .bind(SPAN_DAYS * 86_400)
            .bind(rows.max(1))
            .bind(first)
            .bind(n)
            .with_setting("max_insert_threads", "2")
            .execute()
            .await?;
        done += n;
        tracing::info!(done, rows, "generated fastpath rows");
    }
    Ok(())
}

/// `?` = anchor (epoch s), span (s), the run's first row number, span (s), the run's row
/// count, then the batch's first row number and row count. Time grows with the row number, so
/// each batch is one contiguous slice of the range, as production inserts are.
const INSERT_SQL: &str = "
INSERT INTO fastpath (measurement_uid, report_id, input, probe_cc, probe_asn, test_name,
    test_start_time, measurement_start_time, filename, scores, platform, anomaly, confirmed,
    msm_failure, domain, software_name, software_version, control_failure, blocking_general,
    is_ssl_expected, page_len, page_len_ratio, server_cc, server_asn, server_as_name,
    test_version, architecture, engine_name, engine_version, test_runtime, blocking_type,
    test_helper_address, test_helper_type, ooni_run_link_id)
SELECT
    concat(formatDateTime(mst, '%Y%m%d%H%i%S'), '.', leftPad(toString(h % 1000000), 6, '0'), '_', cc, '_',
           replaceAll(tn, '_', ''), '_', lower(leftPad(hex(h2), 16, '0'))) AS measurement_uid,
    concat(formatDateTime(mst - 60, '%Y%m%dT%H%i%SZ'), '_', replaceAll(tn, '_', ''), '_', cc, '_', toString(asn),
           '_n1_', substring(lower(hex(h3)), 1, 16)) AS report_id,
    if(tn = 'web_connectivity', concat('https://', dom, '/'), '') AS input,
    cc AS probe_cc,
    asn AS probe_asn,
    tn AS test_name,
    mst - 60 AS test_start_time,
    mst AS measurement_start_time,
    '' AS filename,
    if(anomaly = 't',
       concat('{\"blocking_general\":1.0,\"blocking_global\":0.0,\"blocking_country\":0.0,\"blocking_isp\":0.0,\"blocking_local\":0.0,\"analysis\":{\"blocking_type\":\"',
              arrayElement(['dns', 'tcp_ip', 'http-diff', 'http-failure'], 1 + (h3 % 4)), '\"}}'),
       '{\"blocking_general\":0.0,\"blocking_global\":0.0,\"blocking_country\":0.0,\"blocking_isp\":0.0,\"blocking_local\":0.0}') AS scores,
    arrayElement(['android', 'ios', 'linux', 'macos', 'windows'], 1 + (h2 % 5)) AS platform,
    anomaly,
    if(anomaly = 't' AND h3 % 10 = 0, 't', 'f') AS confirmed,
    if(anomaly = 'f' AND h2 % 20 = 0, 't', 'f') AS msm_failure,
    if(tn = 'web_connectivity', dom, '') AS domain,
    'ooniprobe-android' AS software_name,
    '3.20.0' AS software_version,
    '' AS control_failure,
    0 AS blocking_general, 0 AS is_ssl_expected, 0 AS page_len, 0 AS page_len_ratio,
    '' AS server_cc, 0 AS server_asn, '' AS server_as_name,
    '0.4.3' AS test_version, 'arm64' AS architecture, 'ooniprobe-engine' AS engine_name,
    '3.20.0' AS engine_version, toFloat32((h2 % 30000) / 1000) AS test_runtime, '' AS blocking_type,
    'https://1.th.ooni.org' AS test_helper_address, 'https' AS test_helper_type, NULL AS ooni_run_link_id
FROM
(
    SELECT
        number AS n,
        cityHash64(n, 1) AS h,
        cityHash64(n, 2) AS h2,
        cityHash64(n, 3) AS h3,
        toDateTime(toUInt32(? - ? + intDiv((n - ?) * ?, ?))) AS mst,
        arrayElement(['US','IT','DE','BR','IN','RU','IR','CN','GB','FR','ID','TR','MX','UA','VE','EG','MY','TH','PK','NG',
                      'KE','ZA','AR','CO','PE','ES','NL','CA','AU','JP','KR','VN','PH','BD','SA','AE','IQ','SY','CU','BY',
                      'KZ','UZ','MM','ET','UG','TZ','ZW','SD','LB','JO','MA','DZ','TN','CH','AT','SE','NO','FI','PL','RO'],
                     1 + toUInt32(floor(pow((h % 1000000) / 1000000, 2.5) * 60))) AS cc,
        toUInt32(1000 + (h2 % 300) * 7 + (cityHash64(cc) % 50000)) AS asn,
        multiIf(h3 % 100 < 75, 'web_connectivity', h3 % 100 < 83, 'dnscheck', h3 % 100 < 87, 'signal',
                h3 % 100 < 90, 'telegram', h3 % 100 < 93, 'whatsapp', h3 % 100 < 95, 'facebook_messenger',
                h3 % 100 < 97, 'tor', h3 % 100 < 98, 'torsf', h3 % 100 < 99, 'psiphon', 'ndt') AS tn,
        concat('www.d', toString(toUInt32(floor(pow((h2 % 1000003) / 1000003, 3) * 5000))), '.example') AS dom,
        if(h % 10 = 0, 't', 'f') AS anomaly
    FROM numbers(?, ?)
)
";
