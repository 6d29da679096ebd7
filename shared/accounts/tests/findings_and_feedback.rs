//! Black-box tests of findings (owner vs admin rules, visibility, slugs, filters and
//! sorting) and of measurement feedback (summary, one vote per account, overwrite).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ooni_platform::auth::Role;
use serde_json::{json, Value};

fn finding(email: &str, title: &str) -> Value {
    json!({
        "id": "",
        "title": title,
        "short_description": "sample oonifinding description",
        "reported_by": "sample user",
        "email_address": email,
        "text": "this is a sample oonifinding incident",
        "published": false,
        "event_type": "incident",
        "start_time": "2024-03-01T00:00:00.000000Z",
        "ASNs": [],
        "CCs": ["IN", "TZ"],
        "themes": ["social_media"],
        "tags": [],
        "test_names": ["webconnectivity"],
        "domains": ["www.google.com"],
        "links": []
    })
}

#[tokio::test]
async fn users_manage_their_own_findings_and_admins_manage_and_publish_any() {
    let env = support::start().await;
    let owner_email = "owner@example.org";
    let owner = env.token(owner_email, Role::User);
    let other = env.token("other@example.org", Role::User);
    let admin = env.token(&env.admin_email, Role::Admin);

    let (status, _, _) = env
        .post("/api/v1/incidents/create", None, &finding(owner_email, "t"))
        .await;
    assert_eq!(status, 401);
    let (status, _, _) = env
        .post("/api/v1/incidents/create", Some(&owner), &finding("", "t"))
        .await;
    assert_eq!(status, 400, "the e-mail must be the caller's");
    let (status, _, _) = env
        .post(
            "/api/v1/incidents/create",
            Some(&owner),
            &finding(owner_email, ""),
        )
        .await;
    assert_eq!(status, 422, "empty title");
    let mut published = finding(owner_email, "t");
    published["published"] = json!(true);
    let (status, _, _) = env
        .post("/api/v1/incidents/create", Some(&owner), &published)
        .await;
    assert_eq!(status, 400, "cannot create published");
    let mut backwards = finding(owner_email, "t");
    backwards["end_time"] = json!("2024-02-01T00:00:00Z");
    let (status, _, _) = env
        .post("/api/v1/incidents/create", Some(&owner), &backwards)
        .await;
    assert_eq!(status, 422);

    let (status, body, headers) = env
        .post(
            "/api/v1/incidents/create",
            Some(&owner),
            &finding(owner_email, "Iran blocks X!"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["r"], 1);
    assert_eq!(headers["cache-control"], "no-cache");
    let id = body["id"].as_str().unwrap().to_owned();

    // Drafts: hidden from anonymous callers and other users, visible to the owner and admins.
    let (status, _, _) = env.get(&format!("/api/v1/incidents/show/{id}"), None).await;
    assert_eq!(status, 404);
    let (status, _, _) = env
        .get(&format!("/api/v1/incidents/show/{id}"), Some(&other))
        .await;
    assert_eq!(status, 404);
    let (_, mine, _) = env
        .get(&format!("/api/v1/incidents/show/{id}"), Some(&owner))
        .await;
    let incident = &mine["incident"];
    assert_eq!(incident["mine"], true);
    assert_eq!(incident["email_address"], "", "only admins see the address");
    assert_eq!(incident["slug"], "2024-iran-blocks-x");
    let (_, as_admin, _) = env
        .get(&format!("/api/v1/incidents/show/{id}"), Some(&admin))
        .await;
    assert_eq!(as_admin["incident"]["email_address"], owner_email);
    assert_eq!(as_admin["incident"]["mine"], false);

    // Owner updates; strangers and wrong addresses are 403; users cannot publish.
    let mut upd = incident.clone();
    upd["text"] = json!("replacement text");
    upd["email_address"] = json!(owner_email);
    let (status, body, _) = env
        .post("/api/v1/incidents/update", Some(&owner), &upd)
        .await;
    assert_eq!((status, body["id"].clone()), (200, json!(id)));
    let (status, _, _) = env
        .post("/api/v1/incidents/update", Some(&other), &upd)
        .await;
    assert_eq!(status, 403);
    let mut wrong_mail = upd.clone();
    wrong_mail["email_address"] = json!("");
    let (status, _, _) = env
        .post("/api/v1/incidents/update", Some(&owner), &wrong_mail)
        .await;
    assert_eq!(status, 403);
    let mut publish = upd.clone();
    publish["published"] = json!(true);
    let (status, _, _) = env
        .post("/api/v1/incidents/update", Some(&owner), &publish)
        .await;
    assert_eq!(status, 403, "users cannot publish");
    let (status, _, _) = env
        .post(
            "/api/v1/incidents/publish",
            Some(&owner),
            &json!({"id": id}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = env
        .post(
            "/api/v1/incidents/publish",
            Some(&admin),
            &json!({"id": "12"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = env
        .post(
            "/api/v1/incidents/publish",
            Some(&admin),
            &json!({"id": id}),
        )
        .await;
    assert_eq!(status, 200);

    // Published: visible to everyone, by id and by slug.
    let (status, public, _) = env
        .get("/api/v1/incidents/show/2024-iran-blocks-x", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(public["incident"]["text"], "replacement text");
    assert_eq!(public["incident"]["published"], true);
    assert_eq!(public["incident"]["mine"], false);

    let (status, _, _) = env
        .post(
            "/api/v1/incidents/unpublish",
            Some(&admin),
            &json!({"id": id}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = env.get(&format!("/api/v1/incidents/show/{id}"), None).await;
    assert_eq!(status, 404);

    // Delete: not by others, yes by the owner.
    let (status, _, _) = env
        .post(
            "/api/v1/incidents/delete",
            Some(&other),
            &json!({"id": id, "email_address": "other@example.org"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = env
        .post(
            "/api/v1/incidents/delete",
            Some(&owner),
            &json!({"id": id, "email_address": owner_email}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = env
        .get(&format!("/api/v1/incidents/show/{id}"), Some(&admin))
        .await;
    assert_eq!(status, 404);

    // Admins may update and delete anyone's finding.
    let (_, body, _) = env
        .post(
            "/api/v1/incidents/create",
            Some(&other),
            &finding("other@example.org", "second"),
        )
        .await;
    let id2 = body["id"].as_str().unwrap().to_owned();
    let mut upd = finding("", "second, edited");
    upd["id"] = json!(id2);
    let (status, _, _) = env
        .post("/api/v1/incidents/update", Some(&admin), &upd)
        .await;
    assert_eq!(status, 200);
    let (_, shown, _) = env
        .get(&format!("/api/v1/incidents/show/{id2}"), Some(&admin))
        .await;
    assert_eq!(shown["incident"]["title"], "second, edited");
    assert_eq!(
        shown["incident"]["email_address"], "other@example.org",
        "the author stays"
    );
    let (status, _, _) = env
        .post(
            "/api/v1/incidents/delete",
            Some(&admin),
            &json!({"id": id2}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn search_filters_sorts_and_hides_drafts_and_addresses() {
    let env = support::start().await;
    let email = "author@example.org";
    let user = env.token(email, Role::User);
    let admin = env.token(&env.admin_email, Role::Admin);
    let mut ids = Vec::new();
    for (i, (title, cc, asn, theme, start)) in [
        ("first", "IT", 30722, "news_media", "2024-01-03T00:00:00Z"),
        (
            "second",
            "IR",
            197207,
            "social_media",
            "2024-01-01T00:00:00Z",
        ),
        ("third", "IR", 44244, "social_media", "2024-01-02T00:00:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut f = finding(email, title);
        f["CCs"] = json!([cc]);
        f["ASNs"] = json!([asn]);
        f["themes"] = json!([theme]);
        f["start_time"] = json!(start);
        let (status, body, _) = env.post("/api/v1/incidents/create", Some(&user), &f).await;
        assert_eq!(status, 200, "{i}: {body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
    }
    let (status, _, _) = env
        .post(
            "/api/v1/incidents/publish",
            Some(&admin),
            &json!({"id": ids[1]}),
        )
        .await;
    assert_eq!(status, 200);

    let titles = |v: &Value| -> Vec<String> {
        v["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, anon, _) = env.get("/api/v1/incidents/search", None).await;
    assert_eq!(
        titles(&anon),
        ["second"],
        "anonymous callers see published findings only"
    );
    assert!(
        anon["incidents"][0].get("text").is_none(),
        "search results carry no text"
    );
    assert_eq!(anon["incidents"][0]["email_address"], "");
    let (_, own, _) = env
        .get("/api/v1/incidents/search?only_mine=true", Some(&user))
        .await;
    assert_eq!(
        titles(&own),
        ["third", "second", "first"],
        "newest creation first"
    );
    assert!(own["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["mine"] == true && i["email_address"] == ""));
    let (_, none, _) = env
        .get("/api/v1/incidents/search?only_mine=true", None)
        .await;
    assert_eq!(none, json!({"incidents": []}));

    let (_, all, _) = env
        .get(
            "/api/v1/incidents/search?sort_by=start_time&order=asc",
            Some(&admin),
        )
        .await;
    assert_eq!(titles(&all), ["second", "third", "first"]);
    assert!(all["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["email_address"] == email));
    let (_, ir, _) = env
        .get(
            "/api/v1/incidents/search?country_code=IR&sort_by=create_time&order=asc",
            Some(&admin),
        )
        .await;
    assert_eq!(titles(&ir), ["second", "third"]);
    let (_, by_asn, _) = env
        .get("/api/v1/incidents/search?asn=30722&asn=44244", Some(&admin))
        .await;
    assert_eq!(titles(&by_asn), ["third", "first"]);
    let (_, by_theme, _) = env
        .get("/api/v1/incidents/search?theme=news_media", Some(&admin))
        .await;
    assert_eq!(titles(&by_theme), ["first"]);
    let (_, by_domain, _) = env
        .get("/api/v1/incidents/search?domain=nope.example", Some(&admin))
        .await;
    assert_eq!(titles(&by_domain), Vec::<String>::new());

    // An edit moves a finding to the top of the update-time order (times are whole seconds).
    tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
    let (_, shown, _) = env
        .get(&format!("/api/v1/incidents/show/{}", ids[0]), Some(&user))
        .await;
    let mut upd = shown["incident"].clone();
    upd["email_address"] = json!(email);
    upd["short_description"] = json!("edited");
    let (status, _, _) = env
        .post("/api/v1/incidents/update", Some(&user), &upd)
        .await;
    assert_eq!(status, 200);
    let (_, by_update, _) = env
        .get("/api/v1/incidents/search?sort_by=update_time", Some(&admin))
        .await;
    assert_eq!(titles(&by_update)[0], "first");
    let (status, _, _) = env
        .get("/api/v1/incidents/search?sort_by=title", None)
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn feedback_is_one_vote_per_account_and_the_last_write_wins() {
    let env = support::start().await;
    let uid = "20240301000000.123456_IT_webconnectivity_0123456789abcdef";
    let alice = env.token("alice@example.org", Role::User);
    let bob = env.token("bob@example.org", Role::User);
    let path = format!("/api/_/measurement_feedback/{uid}");

    let (status, body, _) = env.get(&path, None).await;
    assert_eq!((status, body), (200, json!({"summary": {}})));
    let (status, _, _) = env
        .post(
            "/api/_/measurement_feedback",
            None,
            &json!({"measurement_uid": uid, "status": "ok"}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, body, _) = env
        .post(
            "/api/_/measurement_feedback",
            Some(&alice),
            &json!({"measurement_uid": uid, "status": "blocked.bogus"}),
        )
        .await;
    assert_eq!((status, body), (400, json!({"error": "Invalid status"})));

    for (who, status) in [
        (&alice, "ok"),
        (&bob, "blocked.dns"),
        (&alice, "blocked.blockpage.http"),
    ] {
        let (code, body, _) = env
            .post(
                "/api/_/measurement_feedback",
                Some(who),
                &json!({"measurement_uid": uid, "status": status}),
            )
            .await;
        assert_eq!((code, body), (200, json!({})));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, body, _) = env.get(&path, Some(&alice)).await;
    assert_eq!(
        body,
        json!({"summary": {"blocked.dns": 1, "blocked.blockpage.http": 1}, "user_feedback": "blocked.blockpage.http"})
    );
    let (_, body, _) = env.get(&path, None).await;
    assert_eq!(
        body,
        json!({"summary": {"blocked.dns": 1, "blocked.blockpage.http": 1}})
    );
    let (_, body, _) = env.get(&path, Some(&bob)).await;
    assert_eq!(body["user_feedback"], "blocked.dns");
}
