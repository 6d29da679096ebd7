//! Black-box tests of the OONI Run v2 routes, ported from upstream `test_oonirun.py`:
//! create → get → edit → revisions → engine-descriptor, the 422/403/404 cases and the
//! public key set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ooni_platform::auth::Role;
use serde_json::{json, Value};

const EXPECTED_OONIRUN_LINK_PUBLIC_KEYS: [&str; 17] = [
    "oonirun_link_id",
    "date_created",
    "date_updated",
    "revision",
    "is_mine",
    "is_expired",
    "name",
    "short_description",
    "description",
    "author",
    "nettests",
    "name_intl",
    "short_description_intl",
    "description_intl",
    "icon",
    "color",
    "expiration_date",
];

const AUTHOR: &str = "oonitarian@example.com";

fn sample() -> Value {
    json!({
        "name": "",
        "name_intl": {},
        "description": "integ-test description in English",
        "description_intl": {"es": "integ-test descripción en español"},
        "short_description": "integ-test short description in English",
        "short_description_intl": {"it": "integ-test descrizione breve in italiano"},
        "icon": "myicon",
        "author": AUTHOR,
        "nettests": [
            {"inputs": ["https://example.com/", "https://ooni.org/"], "targets_name": null, "inputs_extra": null,
             "options": {"HTTP3Enabled": true}, "is_background_run_enabled_default": false,
             "is_manual_run_enabled_default": false, "test_name": "web_connectivity"},
            {"inputs": [], "targets_name": null, "inputs_extra": null, "options": {},
             "is_background_run_enabled_default": false, "is_manual_run_enabled_default": false, "test_name": "dnscheck"},
            {"inputs": null, "targets_name": "websites_list_prioritized", "inputs_extra": null, "options": {},
             "is_background_run_enabled_default": false, "is_manual_run_enabled_default": false, "test_name": "dnscheck"}
        ]
    })
}

fn meta() -> Value {
    json!({"run_type": "timed", "is_charging": true, "probe_asn": "AS1234", "probe_cc": "VE",
           "network_type": "wifi", "website_category_codes": []})
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn expected_keys() -> Vec<String> {
    let mut k: Vec<String> = EXPECTED_OONIRUN_LINK_PUBLIC_KEYS
        .iter()
        .map(|s| s.to_string())
        .collect();
    k.sort();
    k
}

fn past() -> String {
    ooni_accounts::util::fmt_datetime(&(chrono::Utc::now() - chrono::Duration::minutes(1)))
}

fn is_wire_time(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 27 && s.ends_with('Z') && s.as_bytes()[19] == b'.'
}

#[tokio::test]
async fn field_validation_gives_422_and_authorship_and_login_are_enforced() {
    let env = support::start().await;
    let user = env.token(AUTHOR, Role::User);
    let (status, _, _) = env.post("/api/v2/oonirun/links", None, &sample()).await;
    assert_eq!(status, 401, "unauthenticated requests are rejected");
    let (status, _, _) = env
        .post("/api/v2/oonirun/links", Some(&user), &sample())
        .await;
    assert_eq!(status, 422, "empty name");

    let mut z = sample();
    z["name"] = json!("integ-test name in English");
    for (field, value) in [
        ("name_intl", json!({"it": ""})),
        ("color", json!("red")),
        ("short_description", json!("x")),
    ] {
        let mut bad = z.clone();
        bad[field] = value;
        let (status, _, _) = env.post("/api/v2/oonirun/links", Some(&user), &bad).await;
        assert_eq!(status, 422, "{field}");
    }
    let mut no_author = z.clone();
    no_author.as_object_mut().unwrap().remove("author");
    let (status, _, _) = env
        .post("/api/v2/oonirun/links", Some(&user), &no_author)
        .await;
    assert_eq!(status, 422, "author is required");
    let mut other = z.clone();
    other["author"] = json!("nome@example.com");
    let (status, _, _) = env.post("/api/v2/oonirun/links", Some(&user), &other).await;
    assert_eq!(status, 400, "author must be the caller");

    let mut both = z.clone();
    both["nettests"][0]["targets_name"] = json!("example_name");
    let (status, body, _) = env.post("/api/v2/oonirun/links", Some(&user), &both).await;
    assert_eq!(status, 422, "targets_name with inputs: {body}");
    let mut extra = z.clone();
    extra["nettests"][0]["inputs_extra"] = json!([{"provider": "riseupvpn"}]);
    let (status, _, _) = env.post("/api/v2/oonirun/links", Some(&user), &extra).await;
    assert_eq!(status, 422, "inputs_extra length");

    z["name_intl"] = Value::Null;
    let (status, body, _) = env.post("/api/v2/oonirun/links", Some(&user), &z).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["oonirun_link_id"], "10000", "ids start at 10000");
    assert_eq!(keys(&body), expected_keys());
    assert!(
        is_wire_time(&body["date_created"]) && is_wire_time(&body["expiration_date"]),
        "{body}"
    );
    let (_, body, _) = env.post("/api/v2/oonirun/links", Some(&user), &z).await;
    assert_eq!(body["oonirun_link_id"], "10001");
}

#[tokio::test]
async fn create_get_edit_revisions_and_expiry_follow_the_upstream_workflow() {
    let env = support::start().await;
    let user = env.token(AUTHOR, Role::User);
    let admin = env.token(&env.admin_email, Role::Admin);
    let mut z = sample();
    z["name"] = json!("integ-test name in English");
    z["name_intl"]["it"] = json!("integ-test nome in italiano");
    let (status, created, _) = env.post("/api/v2/oonirun/links", Some(&user), &z).await;
    assert_eq!(status, 200, "{created}");
    let id = created["oonirun_link_id"].as_str().unwrap().to_owned();

    let (status, j, headers) = env
        .get(&format!("/api/v2/oonirun/links/{id}"), Some(&user))
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(
        j["nettests"], z["nettests"],
        "nettests round-trip with all seven keys"
    );
    assert_eq!(j["name_intl"], z["name_intl"]);
    assert_eq!(
        (
            j["is_mine"].clone(),
            j["revision"].clone(),
            j["is_expired"].clone()
        ),
        (json!(true), json!("1"), json!(false))
    );
    let (_, anon, _) = env.get(&format!("/api/v2/oonirun/links/{id}"), None).await;
    assert_eq!(anon["is_mine"], false);

    // Metadata-only edits keep the revision; nettest edits add one.
    let mut edit = z.clone();
    edit["description_intl"]["it"] = json!("integ-test *nuova* descrizione in italiano");
    let (status, j, _) = env
        .put(&format!("/api/v2/oonirun/links/{id}"), Some(&user), &edit)
        .await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["revision"], "1");
    edit["nettests"][0]["inputs"]
        .as_array_mut()
        .unwrap()
        .push(json!("https://foo.net/"));
    let (_, j, _) = env
        .put(&format!("/api/v2/oonirun/links/{id}"), Some(&user), &edit)
        .await;
    assert_eq!(j["revision"], "2");
    edit["nettests"][0]["inputs"]
        .as_array_mut()
        .unwrap()
        .push(json!("https://foo2.net/"));
    let (_, j, _) = env
        .put(&format!("/api/v2/oonirun/links/{id}"), Some(&admin), &edit)
        .await;
    assert_eq!(j["revision"], "3", "admins may edit any link");
    assert_eq!(j["is_mine"], false);

    let (_, revs, _) = env
        .get(&format!("/api/v2/oonirun/links/{id}/revisions"), None)
        .await;
    assert_eq!(revs, json!({"revisions": ["3", "2", "1"]}));
    let (_, r1, _) = env
        .get(
            &format!("/api/v2/oonirun/links/{id}/full-descriptor/1"),
            None,
        )
        .await;
    assert_eq!(r1["revision"], "1");
    assert_eq!(r1["nettests"], z["nettests"]);
    assert_eq!(
        r1["description_intl"], edit["description_intl"],
        "metadata is always the latest"
    );
    let (_, latest, _) = env
        .get(
            &format!("/api/v2/oonirun/links/{id}/full-descriptor/latest"),
            None,
        )
        .await;
    assert_eq!(latest["revision"], "3");
    let (status, _, _) = env
        .get(
            &format!("/api/v2/oonirun/links/{id}/full-descriptor/notarevision"),
            None,
        )
        .await;
    assert_eq!(status, 422);
    let (status, _, _) = env.get("/api/v2/oonirun/links/404/revisions", None).await;
    assert_eq!(status, 404);
    let (status, _, _) = env
        .get("/api/v2/oonirun/links/1234676871672836187", None)
        .await;
    assert_eq!(status, 404);

    // Listing: public key set, is_mine, is_expired, only_latest.
    let (_, list, _) = env.get("/api/v2/oonirun/links", None).await;
    let links = list["oonirun_links"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(keys(&links[0]), expected_keys());
    assert_eq!(links[0]["nettests"].as_array().unwrap().len(), 3);
    let (_, all_revs, _) = env
        .get("/api/v2/oonirun/links?only_latest=false", None)
        .await;
    assert_eq!(
        all_revs["oonirun_links"][0]["nettests"]
            .as_array()
            .unwrap()
            .len(),
        9
    );
    let (_, mine, _) = env
        .get("/api/v2/oonirun/links?is_mine=True", Some(&user))
        .await;
    assert_eq!(mine["oonirun_links"].as_array().unwrap().len(), 1);
    let (_, not_mine, _) = env
        .get("/api/v2/oonirun/links?is_mine=true", Some(&admin))
        .await;
    assert_eq!(not_mine["oonirun_links"], json!([]));

    // Other users see 404, the owner may not change the author (403).
    let stranger = env.token("stranger@example.com", Role::User);
    let mut theirs = edit.clone();
    theirs["author"] = json!("stranger@example.com");
    let (status, _, _) = env
        .put(
            &format!("/api/v2/oonirun/links/{id}"),
            Some(&stranger),
            &theirs,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = env
        .put(&format!("/api/v2/oonirun/links/{id}"), Some(&user), &theirs)
        .await;
    assert_eq!(status, 403);

    // Archive by expiring; expired links are hidden by default and read-only.
    let mut expire = edit.clone();
    expire["expiration_date"] = json!(past());
    let (status, j, _) = env
        .put(&format!("/api/v2/oonirun/links/{id}"), Some(&user), &expire)
        .await;
    assert_eq!(status, 200);
    assert_eq!(j["is_expired"], true);
    let (status, _, _) = env
        .put(&format!("/api/v2/oonirun/links/{id}"), Some(&user), &expire)
        .await;
    assert_eq!(status, 403, "expired link cannot be edited");
    let (_, list, _) = env.get("/api/v2/oonirun/links", Some(&user)).await;
    assert_eq!(list["oonirun_links"], json!([]));
    let (_, list, _) = env
        .get("/api/v2/oonirun/links?is_expired=True", Some(&user))
        .await;
    assert_eq!(list["oonirun_links"][0]["is_expired"], true);
    let (_, j, _) = env.get(&format!("/api/v2/oonirun/links/{id}"), None).await;
    assert_eq!(j["is_expired"], true);
}

async fn seed_prioritization(env: &support::Env) {
    let ch = env.stack.ch();
    ch.query(
        "INSERT INTO citizenlab (domain, url, cc, category_code) VALUES \
         ('example.com', 'https://example.com/', 'ZZ', 'NEWS'), \
         ('ooni.org', 'https://ooni.org/', 've', 'HUMR'), \
         ('games.com', 'https://games.com/', 'ZZ', 'GAME'), \
         ('it.org', 'https://it.org/', 'it', 'NEWS')",
    )
    .execute()
    .await
    .unwrap();
    ch.query(
        "INSERT INTO url_priorities (sign, category_code, cc, domain, url, priority) VALUES \
         (1, 'NEWS', '*', '*', '*', 100), (1, 'HUMR', '*', '*', '*', 80), (1, 'GAME', '*', '*', '*', -5), \
         (1, 'HUMR', 'VE', '*', '*', 1000), (-1, 'HUMR', 'VE', '*', '*', 1000)",
    )
    .execute()
    .await
    .unwrap();
}

#[tokio::test]
async fn engine_descriptors_fill_prioritized_targets_from_clickhouse() {
    let env = support::start().await;
    seed_prioritization(&env).await;
    let user = env.token(AUTHOR, Role::User);
    let mut z = sample();
    z["name"] = json!("dynamic lists");
    let (_, created, _) = env.post("/api/v2/oonirun/links", Some(&user), &z).await;
    let id = created["oonirun_link_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/oonirun/links/{id}/engine-descriptor/latest");

    let (status, j, _) = env.post(&path, None, &meta()).await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["revision"], "1");
    assert_eq!(j["date_created"], created["date_created"]);
    assert_eq!(
        j["nettests"][0], z["nettests"][0],
        "static inputs are untouched"
    );
    let dynamic = &j["nettests"][2];
    assert_eq!(dynamic["targets_name"], "websites_list_prioritized");
    assert_eq!(
        dynamic["inputs"],
        json!(["https://example.com/", "https://ooni.org/"]),
        "weights 1000 > 800; GAME < 0 dropped; IT not ours; the cancelled VE rule ignored"
    );
    assert_eq!(
        dynamic["inputs_extra"],
        json!([{"category_code": "NEWS", "country_code": "XX"}, {"category_code": "HUMR", "country_code": "VE"}])
    );

    let mut humr = meta();
    humr["website_category_codes"] = json!(["HUMR"]);
    let (_, j, _) = env.post(&path, None, &humr).await;
    assert_eq!(j["nettests"][2]["inputs"], json!(["https://ooni.org/"]));

    let (_, by_number, _) = env
        .post(
            &format!("/api/v2/oonirun/links/{id}/engine-descriptor/1"),
            None,
            &meta(),
        )
        .await;
    assert_eq!(by_number["revision"], "1");

    let mut bad = meta();
    bad["run_type"] = json!("bad");
    let (status, _, _) = env.post(&path, None, &bad).await;
    assert_eq!(status, 422);
    let resp = env
        .http
        .post(env.url(&path))
        .header(
            "UserAgent",
            "ooniprobe-android-unattended,3.8.2,android,ooniprobe-engine,3.17.2",
        )
        .json(&meta())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422, "a five-field UserAgent is rejected");
    let resp = env
        .http
        .post(env.url(&path))
        .header("UserAgent", "ooniprobe-android-unattended,3.8.2,android,ooniprobe-engine,3.17.2,ooniprobe-engine_1.2.3")
        .json(&meta())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _, _) = env
        .post(
            "/api/v2/oonirun/links/404/engine-descriptor/latest",
            None,
            &meta(),
        )
        .await;
    assert_eq!(status, 404);
}
