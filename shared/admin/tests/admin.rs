//! Black-box tests of the admin routes over the dev server on the real local ClickHouse and AWS
//! emulator, with a stateful fake GitHub API: prioritization rules (seeding, CollapsingMergeTree
//! edits read with FINAL, roles), the debug and per-country views, and the test-list editor's
//! state machine (CLEAN → IN_PROGRESS → PR_OPEN → CLEAN), including retries after a crash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ooni_admin::editor::github::TokenSource;
use ooni_admin::editor::store::{DraftState, DynamoEditorStore, EditorStore};
use ooni_platform::auth::Role;
use ooni_platform::functions::Table;
use serde_json::{json, Value};
use std::sync::Arc;
use support::*;

// ---- Prioritization rules ------------------------------------------------------------------

fn rule_list(v: &Value) -> Vec<(String, String, String, String, i64)> {
    v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (
                s("category_code"),
                s("cc"),
                s("domain"),
                s("url"),
                r["priority"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_rule_list_is_seeded_with_the_default_rules_on_an_empty_table_only_once() {
    let a = Admin::start().await;
    let (status, body) = a.get("/api/_/url-priorities/list", None).await;
    assert_eq!(status, 200);
    let rules = rule_list(&body);
    assert_eq!(rules.len(), ooni_domain::prio::default_prio_rules().len());
    assert!(rules.contains(&("NEWS".into(), "*".into(), "*".into(), "*".into(), 100)));
    assert!(rules.contains(&("CTRL".into(), "*".into(), "*".into(), "*".into(), 20)));
    let (_, again) = a.get("/api/_/url-priorities/list", None).await;
    assert_eq!(rule_list(&again), rules);
    let rows: u64 = a
        .stack
        .ch()
        .query("SELECT count() FROM url_priorities")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(rows as usize, rules.len());
}

#[tokio::test]
async fn an_admin_adds_edits_and_deletes_rules_and_every_reader_sees_the_collapsed_rules() {
    let a = Admin::start().await;
    let admin = a.token(&account(), Role::Admin);
    let update = |old: Value, new: Value| json!({"old_entry": old, "new_entry": new});
    let it_news =
        |p: i64| json!({"category_code": "NEWS", "cc": "IT", "domain": "", "priority": p});

    let (status, body) = a
        .post(
            "/api/_/url-priorities/update",
            Some(&admin),
            &update(Value::Null, it_news(5)),
        )
        .await;
    assert_eq!((status, body), (200, json!(1)));
    let (status, body) = a
        .post(
            "/api/_/url-priorities/update",
            Some(&admin),
            &update(Value::Null, it_news(9)),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"]["err_str"], "err_duplicate_rule");

    let (status, _) = a
        .post(
            "/api/_/url-priorities/update",
            Some(&admin),
            &update(it_news(5), it_news(7)),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = a.get("/api/_/url-priorities/list", None).await;
    let it: Vec<_> = rule_list(&list)
        .into_iter()
        .filter(|r| r.1 == "IT")
        .collect();
    assert_eq!(
        it,
        [("NEWS".into(), "IT".into(), "*".into(), "*".into(), 7)]
    );

    // The probe-side reader (ooni-accounts' RULES_SQL, FINAL) agrees before any merge.
    let targets = ooni_accounts::prio::ClickHouseTargets::new(a.stack.ch());
    let (_, rules) = ooni_accounts::prio::TargetsSource::fetch(&targets, "IT", 0)
        .await
        .unwrap();
    assert_eq!(
        rules
            .iter()
            .filter(|r| r.cc == "IT")
            .map(|r| r.priority)
            .collect::<Vec<_>>(),
        [7]
    );

    let (status, _) = a
        .post(
            "/api/_/url-priorities/update",
            Some(&admin),
            &update(it_news(7), Value::Null),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = a.get("/api/_/url-priorities/list", None).await;
    assert!(rule_list(&list).iter().all(|r| r.1 != "IT"));
    let (status, body) = a
        .post(
            "/api/_/url-priorities/update",
            Some(&admin),
            &update(it_news(7), Value::Null),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"]["err_str"], "err_rule_not_found");
    let (status, body) = a
        .post("/api/_/url-priorities/update", Some(&admin), &json!({}))
        .await;
    assert_eq!(
        (status, body["detail"]["err_str"].as_str()),
        (400, Some("err_no_proposed_changes"))
    );
}

#[tokio::test]
async fn rule_updates_need_an_admin_session() {
    let a = Admin::start().await;
    let body = json!({"new_entry": {"category_code": "NEWS", "cc": "IT", "priority": 5}});
    assert_eq!(
        a.post("/api/_/url-priorities/update", None, &body).await.0,
        401
    );
    let user = a.token(&account(), Role::User);
    assert_eq!(
        a.post("/api/_/url-priorities/update", Some(&user), &body)
            .await
            .0,
        403
    );
    assert_eq!(
        a.post("/api/_/url-priorities/update", Some("not-a-token"), &body)
            .await
            .0,
        401
    );
    let admin = a.token(&account(), Role::Admin);
    assert_eq!(
        a.post(
            "/api/_/url-priorities/update",
            Some(&admin),
            &json!({"new_entry": {"cc": "IT"}})
        )
        .await
        .0,
        422
    );
}

async fn seed_citizenlab(a: &Admin) {
    a.stack
        .ch()
        .query(
            "INSERT INTO citizenlab (domain, url, cc, category_code) VALUES \
             ('www.repubblica.it', 'https://www.repubblica.it/', 'it', 'NEWS'), \
             ('www.example.it', 'https://www.example.it/', 'it', 'MISC'), \
             ('twitter.com', 'https://twitter.com/', 'ZZ', 'GRP'), \
             ('www.bbc.com', 'https://www.bbc.com/news', 'ZZ', 'NEWS')",
        )
        .execute()
        .await
        .unwrap();
}

#[tokio::test]
async fn debug_prioritization_shows_the_ranked_items_with_their_inputs() {
    let a = Admin::start().await;
    seed_citizenlab(&a).await;
    a.get("/api/_/url-priorities/list", None).await; // seeds the default rules
    let (status, body) = a
        .get(
            "/api/_/debug_prioritization?probe_cc=it&category_codes=news,GRP&limit=10",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let items = body["test_items"].as_array().unwrap();
    let got: Vec<(&str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["url"].as_str().unwrap(),
                i["country_code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{body}");
    assert!(got.contains(&("https://www.repubblica.it/", "IT")));
    assert!(got.contains(&("https://twitter.com/", "XX")));
    assert!(items.iter().all(|i| i["priority"].as_i64().unwrap() > 0
        && i["weight"].is_number()
        && i["msmt_cnt"] == 0));
    assert_eq!(body["entries"].as_array().unwrap().len(), 4);
    assert_eq!(
        body["prio_rules"].as_array().unwrap().len(),
        ooni_domain::prio::default_prio_rules().len()
    );

    let (_, one) = a
        .get("/api/_/debug_prioritization?probe_cc=IT&limit=1", None)
        .await;
    assert_eq!(one["test_items"].as_array().unwrap().len(), 1);
    assert_eq!(
        a.get("/api/_/debug_prioritization?limit=many", None)
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn country_prioritization_counts_last_week_measurements_and_anomalies_as_json_and_csv() {
    let a = Admin::start().await;
    seed_citizenlab(&a).await;
    a.get("/api/_/url-priorities/list", None).await;
    a.stack
        .ch()
        .query(
            "INSERT INTO fastpath (measurement_uid, report_id, input, probe_cc, probe_asn, test_name, measurement_start_time, anomaly) \
             SELECT toString(number), 'r', 'https://www.repubblica.it/', 'IT', 30722, 'web_connectivity', now() - 3600, \
                    if(number < 1, 't', 'f') FROM numbers(4)",
        )
        .execute()
        .await
        .unwrap();
    let (status, body) = a.get("/api/_/show_countries_prioritization", None).await;
    assert_eq!(status, 200);
    let rows = body.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["cc"], "IT");
    assert_eq!(rows[0]["url"], "https://www.repubblica.it/");
    assert_eq!(
        (
            rows[0]["msmt_cnt"].as_u64(),
            rows[0]["anomaly_perc"].as_i64(),
            rows[0]["priority"].as_i64()
        ),
        (Some(4), Some(25), Some(100))
    );
    assert_eq!(rows[1]["url"], "https://www.example.it/");
    assert!(rows[2..].iter().all(|r| r["cc"] == "ZZ"));

    let (status, ct, csv) = a
        .get_text("/api/_/show_countries_prioritization?format=csv")
        .await;
    assert_eq!((status, ct.as_str()), (200, "text/csv"));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("domain,url,cc,category_code,msmt_cnt,anomaly_perc,priority")
    );
    assert_eq!(
        lines.next(),
        Some("www.repubblica.it,https://www.repubblica.it/,IT,NEWS,4,25,100")
    );
    assert_eq!(
        a.get("/api/_/show_countries_prioritization?format=xml", None)
            .await
            .0,
        400
    );
}

// ---- Test-list editor ----------------------------------------------------------------------

fn entry(url: &str, cat: &str) -> Value {
    json!({"category_code": cat, "url": url, "date_added": "2026-11-01", "notes": "", "source": "ooni"})
}

#[allow(non_snake_case)]
fn REPUBBLICA() -> Value {
    json!({"category_code": "NEWS", "url": "https://www.repubblica.it/", "date_added": "2017-04-12", "notes": "", "source": "citizenlab"})
}

fn urls(list: &Value) -> Vec<String> {
    list["test_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap().to_owned())
        .collect()
}

async fn update(a: &Admin, token: &str, cc: &str, old: Value, new: Value) -> (u16, Value) {
    a.post("/api/v1/url-submission/update-url", Some(token), &json!({"country_code": cc, "comment": format!("change {cc}"), "old_entry": old, "new_entry": new}))
        .await
}

#[tokio::test]
async fn a_clean_user_sees_the_current_list_and_bad_list_names_are_refused() {
    let a = Admin::start().await;
    let user = a.token(&account(), Role::User);
    let (status, body) = a
        .get("/api/_/url-submission/test-list/IT", Some(&user))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "CLEAN");
    assert_eq!(body["pr_url"], Value::Null);
    assert_eq!(body["changes"], json!({}));
    assert_eq!(
        urls(&body),
        ["https://www.repubblica.it/", "https://www.example.it/"]
    );
    assert_eq!(
        body["test_list"][1],
        json!({"url": "https://www.example.it/", "category_code": "MISC", "date_added": "2020-01-01", "source": "ooni", "notes": "a, b"})
    );

    let (_, missing) = a
        .get("/api/_/url-submission/test-list/zz", Some(&user))
        .await;
    assert_eq!(missing["test_list"], Value::Null);
    let (status, bad) = a
        .get("/api/_/url-submission/test-list/ita", Some(&user))
        .await;
    assert_eq!(
        (status, bad["detail"]["err_str"].as_str()),
        (400, Some("err_invalid_country_code"))
    );
    assert_eq!(
        a.get("/api/_/url-submission/test-list/IT", None).await.0,
        401
    );
}

#[tokio::test]
async fn edits_move_a_user_to_in_progress_and_show_only_in_their_own_view() {
    let a = Admin::start().await;
    let user = a.token(&account(), Role::User);
    let (status, body) = update(
        &a,
        &user,
        "IT",
        Value::Null,
        entry("https://www.corriere.it/", "NEWS"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["updated_entry"]["url"], "https://www.corriere.it/");
    let (status, body) = update(
        &a,
        &user,
        "it",
        REPUBBLICA(),
        entry("https://www.repubblica.it/esteri/", "NEWS"),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (_, view) = a
        .get("/api/_/url-submission/test-list/it", Some(&user))
        .await;
    assert_eq!(view["state"], "IN_PROGRESS");
    assert_eq!(
        urls(&view),
        [
            "https://www.repubblica.it/esteri/",
            "https://www.example.it/",
            "https://www.corriere.it/"
        ]
    );
    let changes: Vec<(&str, &str)> = view["changes"]["it"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["url"].as_str().unwrap(), c["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes,
        [
            ("https://www.corriere.it/", "add"),
            ("https://www.repubblica.it/esteri/", "add")
        ]
    );
    assert_eq!(
        view["changes"]["it"][0]["category_description"],
        "News Media"
    );

    let other = a.token(&account(), Role::User);
    let (_, theirs) = a
        .get("/api/_/url-submission/test-list/it", Some(&other))
        .await;
    assert_eq!(
        (theirs["state"].as_str(), urls(&theirs).len()),
        (Some("CLEAN"), 2)
    );
}

#[tokio::test]
async fn invalid_duplicate_stale_and_empty_edits_are_refused_with_upstream_error_codes() {
    let a = Admin::start().await;
    let user = a.token(&account(), Role::User);
    let cases = [
        (
            "it",
            Value::Null,
            entry("https://twitter.com/", "GRP"),
            "err_duplicate_url",
        ),
        (
            "it",
            Value::Null,
            entry("https://www.repubblica.it/", "NEWS"),
            "err_duplicate_url",
        ),
        (
            "it",
            Value::Null,
            entry("www.no-scheme.it/", "NEWS"),
            "err_bad_url",
        ),
        (
            "it",
            Value::Null,
            entry("https://ok.it/", "NOPE"),
            "err_bad_category_code",
        ),
        (
            "it",
            Value::Null,
            json!({"category_code": "NEWS", "url": "https://ok.it/", "date_added": "01/02/2026", "notes": "", "source": ""}),
            "err_bad_date",
        ),
        (
            "it",
            entry("https://not-there.it/", "NEWS"),
            Value::Null,
            "err_cannot_update_list",
        ),
        ("it", Value::Null, Value::Null, "err_no_proposed_changes"),
        (
            "ita",
            Value::Null,
            entry("https://ok.it/", "NEWS"),
            "err_invalid_country_code",
        ),
        (
            "fr",
            Value::Null,
            entry("https://ok.fr/", "NEWS"),
            "err_country_not_supported",
        ),
    ];
    for (cc, old, new, err) in cases {
        let (status, body) = update(&a, &user, cc, old, new).await;
        assert_eq!(
            (status, body["detail"]["err_str"].as_str()),
            (400, Some(err)),
            "{body}"
        );
    }
    let (_, view) = a
        .get("/api/_/url-submission/test-list/it", Some(&user))
        .await;
    assert_eq!(view["state"], "CLEAN");
    let (status, body) = a
        .post("/api/v1/url-submission/submit", Some(&user), &json!({}))
        .await;
    assert_eq!(
        (status, body["detail"]["err_str"].as_str()),
        (400, Some("err_no_proposed_changes"))
    );
}

#[tokio::test]
async fn submitting_opens_one_pull_request_with_the_edited_list_and_a_merge_returns_the_user_to_clean(
) {
    let a = Admin::start().await;
    let acct = account();
    let user = a.token(&acct, Role::User);
    update(
        &a,
        &user,
        "it",
        Value::Null,
        entry("https://www.corriere.it/", "NEWS"),
    )
    .await;
    update(&a, &user, "it", json!({"category_code": "MISC", "url": "https://www.example.it/", "date_added": "2020-01-01", "notes": "a, b", "source": "ooni"}), Value::Null).await;

    let (status, body) = a
        .post("/api/v1/url-submission/submit", Some(&user), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let pr_id = body["pr_id"].as_str().unwrap().to_owned();
    assert_eq!(
        pr_id,
        format!("{}/repos/{ORIGIN}/pulls/1", a.github.base_url)
    );

    let branch = format!("user-contribution/{acct}");
    let expected = "url,category_code,category_description,date_added,source,notes\n\
                    https://www.repubblica.it/,NEWS,News Media,2017-04-12,citizenlab,\n\
                    https://www.corriere.it/,NEWS,News Media,2026-11-01,ooni,\n";
    {
        let gh = a.gh();
        let commit = gh.refs[&branch].clone();
        let files = gh.files_at(&commit).unwrap();
        assert_eq!(files["lists/it.csv"], expected);
        assert_eq!(
            files["lists/global.csv"], GLOBAL_CSV,
            "untouched files are kept"
        );
        assert_eq!(gh.pulls.len(), 1);
        assert_eq!(gh.pulls[0].head, format!("ooni-bot:{branch}"));
        assert_eq!(gh.pulls[0].base, "master");
        assert!(gh.pulls[0].body.contains("change it"));
        assert_eq!(gh.unauthorized, 0);
    }
    let (_, view) = a
        .get("/api/_/url-submission/test-list/it", Some(&user))
        .await;
    assert_eq!(view["state"], "PR_OPEN");
    assert_eq!(
        view["pr_url"],
        "https://github.com/citizenlab/test-lists/pull/1"
    );

    let (_, again) = a
        .post("/api/v1/url-submission/submit", Some(&user), &json!({}))
        .await;
    assert_eq!(again["pr_id"], pr_id.as_str());
    assert_eq!(a.gh().pulls.len(), 1);

    // A reviewer merges it: master now holds the user's version.
    {
        let mut gh = a.gh();
        gh.pulls[0].state = "closed".into();
        gh.pulls[0].merged = true;
        let commit = gh.refs[&branch].clone();
        gh.master = commit;
    }
    let (_, view) = a
        .get("/api/_/url-submission/test-list/it", Some(&user))
        .await;
    assert_eq!(view["state"], "CLEAN");
    assert_eq!(view["changes"], json!({}));
    assert_eq!(
        urls(&view),
        ["https://www.repubblica.it/", "https://www.corriere.it/"]
    );
    assert!(
        !a.gh().refs.contains_key(&branch),
        "the user branch is deleted"
    );
}

#[tokio::test]
async fn editing_with_an_open_pull_request_closes_it_and_a_reviewer_rejection_discards_the_draft() {
    let a = Admin::start().await;
    let user = a.token(&account(), Role::User);
    update(
        &a,
        &user,
        "it",
        Value::Null,
        entry("https://www.corriere.it/", "NEWS"),
    )
    .await;
    a.post("/api/v1/url-submission/submit", Some(&user), &json!({}))
        .await;

    let (status, _) = update(
        &a,
        &user,
        "global",
        Value::Null,
        entry("https://www.wikipedia.org/", "CULTR"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(a.gh().pulls[0].state, "closed");
    let (_, view) = a
        .get("/api/_/url-submission/test-list/global", Some(&user))
        .await;
    assert_eq!(view["state"], "IN_PROGRESS");
    assert_eq!(
        urls(&view),
        ["https://twitter.com/", "https://www.wikipedia.org/"]
    );
    assert_eq!(view["changes"].as_object().unwrap().len(), 2);

    let (_, second) = a
        .post("/api/v1/url-submission/submit", Some(&user), &json!({}))
        .await;
    assert!(
        second["pr_id"].as_str().unwrap().ends_with("/pulls/2"),
        "{second}"
    );

    a.gh().pulls[1].state = "closed".into(); // rejected, not merged
    let (_, view) = a
        .get("/api/_/url-submission/test-list/global", Some(&user))
        .await;
    assert_eq!(view["state"], "CLEAN");
    assert_eq!(urls(&view), ["https://twitter.com/"]);
}

#[tokio::test]
async fn a_submit_or_edit_that_died_half_way_is_finished_by_the_retry() {
    let a = Admin::start().await;
    let acct = account();
    let user = a.token(&acct, Role::User);
    let store = DynamoEditorStore::new(
        a.stack.aws.dynamodb.clone(),
        a.stack.ctx.table(Table::Editor).table_name(),
    );
    update(
        &a,
        &user,
        "it",
        Value::Null,
        entry("https://www.corriere.it/", "NEWS"),
    )
    .await;
    let (_, first) = a
        .post("/api/v1/url-submission/submit", Some(&user), &json!({}))
        .await;

    // Died after opening the pull request, before recording PR_OPEN.
    let v = store.load(&acct).await.unwrap().unwrap();
    let mut draft = v.draft.clone();
    draft.state = DraftState::InProgress;
    draft.pr_url = None;
    store
        .save(&acct, &draft, Some(v.version))
        .await
        .unwrap()
        .unwrap();
    let (status, retry) = a
        .post("/api/v1/url-submission/submit", Some(&user), &json!({}))
        .await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(retry["pr_id"], first["pr_id"]);
    assert_eq!(a.gh().pulls.len(), 1, "no second pull request");

    // Died after closing the pull request for an edit, before recording IN_PROGRESS.
    let v = store.load(&acct).await.unwrap().unwrap();
    assert_eq!(v.draft.state, DraftState::PrOpen);
    let mut draft = v.draft.clone();
    draft.closing = true;
    store
        .save(&acct, &draft, Some(v.version))
        .await
        .unwrap()
        .unwrap();
    a.gh().pulls[0].state = "closed".into();
    let (_, view) = a
        .get("/api/_/url-submission/test-list/it", Some(&user))
        .await;
    assert_eq!(view["state"], "IN_PROGRESS", "the edits are kept");
    assert!(urls(&view).contains(&"https://www.corriere.it/".to_owned()));
}

#[tokio::test]
async fn the_editor_answers_503_while_github_is_down_and_recovers() {
    let a = Admin::start().await;
    let user = a.token(&account(), Role::User);
    a.gh().down = true;
    assert_eq!(
        a.get("/api/_/url-submission/test-list/it", Some(&user))
            .await
            .0,
        503
    );
    assert_eq!(
        update(
            &a,
            &user,
            "it",
            Value::Null,
            entry("https://www.corriere.it/", "NEWS")
        )
        .await
        .0,
        503
    );
    a.gh().down = false;
    assert_eq!(
        update(
            &a,
            &user,
            "it",
            Value::Null,
            entry("https://www.corriere.it/", "NEWS")
        )
        .await
        .0,
        200
    );
}

// ---- Sample events -------------------------------------------------------------------------

#[tokio::test]
async fn every_sample_event_of_an_admin_function_is_served_by_its_handler() {
    let a = Admin::start().await;
    let service = ooni_admin::AdminService::new(a.stack.ctx.clone());
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let mut seen = 0;
    for function in ooni_platform::Service::functions(&service) {
        let Some(ooni_platform::Handler::Http(handler)) =
            ooni_platform::Service::build(&service, function)
                .await
                .unwrap()
        else {
            panic!("{function} is not an HTTP function")
        };
        for file in std::fs::read_dir(events.join(function)).unwrap() {
            let path = file.unwrap().path();
            let req =
                lambda_http::request::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let resp = ooni_platform::dispatch::dispatch_http(handler.clone(), function, req).await;
            // Sample tokens are not valid sessions; every other event is answered in full.
            let protected =
                path.to_string_lossy().contains("UrlSubmission") || path.ends_with("update.json");
            let want = if protected { 401 } else { 200 };
            assert_eq!(resp.status(), want, "{}", path.display());
            seen += 1;
        }
    }
    assert_eq!(seen, 7);
}

/// The GitHub token as production loads it: `OONI_GITHUB_TOKEN_SSM_PARAMETER` names an SSM
/// SecureString (here in the AWS emulator), read with decryption on first use; while the
/// parameter is missing the editor answers 503 without calling GitHub.
#[tokio::test]
async fn the_github_token_is_read_from_the_ssm_parameter_the_environment_names() {
    let parameter = format!("/ooni/test/github-token-{}", uuid::Uuid::new_v4().simple());
    let p = parameter.clone();
    let a = Admin::start_with(move |stack| TokenSource::Environment {
        aws: stack.ctx.aws.clone(),
        lookup: Arc::new(move |k| (k == "OONI_GITHUB_TOKEN_SSM_PARAMETER").then(|| p.clone())),
    })
    .await;
    let user = a.token(&account(), Role::User);
    let (status, body) = a
        .get("/api/_/url-submission/test-list/it", Some(&user))
        .await;
    assert_eq!(status, 503, "no parameter yet: {body}");
    assert_eq!(
        a.github.requests().len(),
        0,
        "GitHub is not called without a token"
    );

    a.stack
        .ctx
        .aws
        .ssm
        .put_parameter()
        .name(&parameter)
        .value(TOKEN)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let (status, body) = a
        .get("/api/_/url-submission/test-list/it", Some(&user))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(a.gh().unauthorized, 0);
    assert!(a
        .github
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))));
    assert!(!body.to_string().contains(TOKEN));
}
