//! Black-box tests of the account routes on the dev server over the real local services:
//! the e-mail login flow (link read back from the SES emulator), roles, expunge and the
//! token-forgery cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use ooni_platform::auth::{Role, UserClaims, AUD_REGISTER, AUD_USER_AUTH};
use serde_json::json;

fn decode(token: &str) -> UserClaims {
    ooni_testkit::jwt_keys()
        .user
        .verify(token, AUD_USER_AUTH, true)
        .unwrap()
}

#[tokio::test]
async fn register_email_login_and_refresh_issue_upstream_session_tokens() {
    let env = support::start().await;
    let email = support::unique_email("flow");
    let login_token = env
        .email_login_token(
            &email.to_uppercase(),
            "https://explorer.ooni.org/country/IT",
        )
        .await;

    let (status, body, headers) = env
        .get(&format!("/api/v1/user_login?k={login_token}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["email_address"],
        email.as_str(),
        "the address is lowercased"
    );
    assert_eq!(body["redirect_to"], "https://explorer.ooni.org/country/IT");
    assert_eq!(headers["cache-control"], "private, no-store");
    let bearer = body["bearer"].as_str().unwrap();
    let c = decode(bearer);
    assert_eq!(c.aud, "user_auth");
    assert_eq!(c.role, Role::User);
    assert_eq!(c.account_id, env.account_id(&email));
    assert_eq!(c.account_id.len(), 32);
    assert_eq!(
        c.exp - c.iat,
        10 * 86_400,
        "min(now + 10 d, login_time + 10 d)"
    );
    assert_eq!(c.login_time, c.iat);

    let (status, body, _) = env.get("/api/_/account_metadata", Some(bearer)).await;
    assert_eq!(
        (status, body),
        (200, json!({"logged_in": true, "role": "user"}))
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body, _) = env.get("/api/v1/user_refresh_token", Some(bearer)).await;
    assert_eq!(status, 200, "{body}");
    let refreshed = decode(body["bearer"].as_str().unwrap());
    assert_eq!(
        refreshed.login_time, c.login_time,
        "refresh keeps login_time"
    );
    assert!(refreshed.iat > c.iat);
    assert_eq!(
        refreshed.exp,
        c.login_time + 10 * 86_400,
        "capped by the login expiry"
    );
}

#[tokio::test]
async fn v2_login_and_session_routes_follow_upstream() {
    let env = support::start().await;
    let (status, body, _) = env.get("/api/v2/ooniauth/user-session", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["is_logged_in"], false);
    assert_eq!(body["login_time"], serde_json::Value::Null);

    let email = support::unique_email("v2");
    let (status, body, _) = env
        .post(
            "/api/v2/ooniauth/user-login",
            None,
            &json!({"email_address": email, "redirect_to": "https://run.ooni.org/"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email_address"], email.as_str());
    assert!(body["login_token_expiration"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let link = support::sent_login_link(&email).await.unwrap();
    assert!(
        link.starts_with("https://run.ooni.org/login?token="),
        "{link}"
    );
    let token = link.split("token=").nth(1).unwrap();

    let (status, body, _) = env
        .post(
            "/api/v2/ooniauth/user-session",
            None,
            &json!({"login_token": token}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["redirect_to"], "https://run.ooni.org/");
    assert_eq!(body["account_id"], env.account_id(&email).as_str());
    assert_eq!(body["is_logged_in"], true);
    let session = body["session_token"].as_str().unwrap().to_owned();

    let (_, body, _) = env
        .get("/api/v2/ooniauth/user-session", Some(&session))
        .await;
    assert_eq!(body["is_logged_in"], true);
    assert_eq!(body["role"], "user");
    assert_eq!(body["session_token"], "");

    let (status, body, _) = env
        .post("/api/v2/ooniauth/user-session", Some(&session), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert!(body["session_token"].as_str().unwrap().len() > 100);

    let (status, body, _) = env
        .post(
            "/api/v2/ooniauth/user-session",
            None,
            &json!({"login_token": "INVALID"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Invalid credentials"}))
    );
    let (status, _, _) = env
        .post(
            "/api/v2/ooniauth/user-session",
            None,
            &json!({"login_token": null}),
        )
        .await;
    assert_eq!(status, 401, "no token and no session");
}

#[tokio::test]
async fn redirects_outside_the_allow_list_and_bad_addresses_are_422() {
    let env = support::start().await;
    for (email, redirect) in [
        ("nick@a.org", "https://BOGUS.example.com"),
        ("nick@a.org", "http://explorer.ooni.org/"),
        ("nick@localhost", "https://explorer.ooni.org/"),
    ] {
        for path in ["/api/v1/user_register", "/api/v2/ooniauth/user-login"] {
            let (status, _, _) = env
                .post(
                    path,
                    None,
                    &json!({"email_address": email, "redirect_to": redirect}),
                )
                .await;
            assert_eq!(status, 422, "{path} {email} {redirect}");
        }
    }
    let (status, _, _) = env.get("/api/v1/user_login", None).await;
    assert_eq!(status, 422, "k is required");
}

#[tokio::test]
async fn admin_routes_say_401_without_a_session_and_403_to_users() {
    let env = support::start().await;
    let user = support::unique_email("user");
    let user_token = env.login(&user).await;
    let admin_token = env.login(&env.admin_email).await;
    assert_eq!(
        decode(&admin_token).role,
        Role::Admin,
        "the admin list makes admins"
    );

    let body = json!({"email_address": user, "role": "admin"});
    let (status, _, _) = env.post("/api/v1/set_account_role", None, &body).await;
    assert_eq!(status, 401);
    let (status, _, _) = env
        .post("/api/v1/set_account_role", Some(&user_token), &body)
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = env
        .get(
            &format!("/api/v1/get_account_role/{user}"),
            Some(&user_token),
        )
        .await;
    assert_eq!(status, 403);

    let (status, body, _) = env
        .get(
            &format!("/api/v1/get_account_role/{user}"),
            Some(&admin_token),
        )
        .await;
    assert_eq!((status, body), (400, json!({"error": "Account not found"})));
    let (status, _, _) = env
        .post(
            "/api/v1/set_account_role",
            Some(&admin_token),
            &json!({"email_address": user, "role": "admin"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body, _) = env
        .get(
            &format!("/api/v1/get_account_role/{user}"),
            Some(&admin_token),
        )
        .await;
    assert_eq!((status, body), (200, json!({"role": "admin"})));
    let (status, body, _) = env
        .post(
            "/api/v1/set_account_role",
            Some(&admin_token),
            &json!({"email_address": user, "role": "root"}),
        )
        .await;
    assert_eq!((status, body), (400, json!({"error": "Invalid role"})));

    // The role record applies at the next login and refresh.
    let promoted = env.login(&user).await;
    assert_eq!(decode(&promoted).role, Role::Admin);
    let (_, body, _) = env
        .get("/api/v1/user_refresh_token", Some(&user_token))
        .await;
    assert_eq!(decode(body["bearer"].as_str().unwrap()).role, Role::Admin);
}

#[tokio::test]
async fn an_expunge_rejects_older_sessions_but_not_new_logins() {
    let env = support::start().await;
    let user = support::unique_email("expunge");
    let old = env.login(&user).await;
    let admin = env.token(&env.admin_email, Role::Admin);
    let (status, _, _) = env.get("/api/v1/user_refresh_token", Some(&old)).await;
    assert_eq!(status, 200);

    let (status, _, _) = env
        .post(
            "/api/v1/set_session_expunge",
            Some(&old),
            &json!({"email_address": user}),
        )
        .await;
    assert_eq!(status, 403, "users cannot expunge");
    let (status, _, _) = env
        .post(
            "/api/v1/set_session_expunge",
            Some(&admin),
            &json!({"email_address": user}),
        )
        .await;
    assert_eq!(status, 200);

    let (status, body, _) = env.get("/api/v1/user_refresh_token", Some(&old)).await;
    assert_eq!(status, 401, "{body}");
    let (_, body, _) = env.get("/api/_/account_metadata", Some(&old)).await;
    assert_eq!(body, json!({"logged_in": false, "role": ""}));

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let fresh = env.login(&user).await;
    let (status, _, _) = env.get("/api/v1/user_refresh_token", Some(&fresh)).await;
    assert_eq!(status, 200, "a login after the expunge works");
}

#[tokio::test]
async fn forged_expired_misaddressed_and_probe_tokens_are_all_401() {
    let env = support::start().await;
    let email = support::unique_email("sec");
    let keys = ooni_testkit::jwt_keys();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let mut expired = env.claims(&email, Role::User);
    expired.exp = chrono::Utc::now().timestamp() - 3600;
    let mut wrong_aud = env.claims(&email, Role::Admin);
    wrong_aud.aud = AUD_REGISTER.into();
    let probe = keys.probe.sign(&env.claims(&email, Role::Admin)).unwrap();
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64.encode(serde_json::to_vec(&env.claims(&email, Role::Admin)).unwrap());
    let alg_none = format!("{header}.{payload}.");
    let good = env.token(&email, Role::User);
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = b64.encode(serde_json::to_vec(&env.claims(&email, Role::Admin)).unwrap());
    let tampered = parts.join(".");

    let cases = [
        ("expired", keys.user.sign(&expired).unwrap()),
        ("wrong audience", keys.user.sign(&wrong_aud).unwrap()),
        ("probe key", probe),
        ("alg none", alg_none),
        ("tampered", tampered),
    ];
    for (what, token) in &cases {
        let (status, _, _) = env.get("/api/v1/user_refresh_token", Some(token)).await;
        assert_eq!(status, 401, "{what} on refresh");
        let (status, _, _) = env
            .post(
                "/api/v1/set_account_role",
                Some(token),
                &json!({"email_address": email, "role": "admin"}),
            )
            .await;
        assert_eq!(status, 401, "{what} on an admin route");
        if *what != "wrong audience" {
            let (status, _, _) = env
                .get(&format!("/api/v1/user_login?k={token}"), None)
                .await;
            assert_eq!(status, 401, "{what} as a login token");
        }
    }
    let (status, body, _) = env.get(&format!("/api/v1/user_login?k={good}"), None).await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Invalid credentials"})),
        "a session is not a login token"
    );
    let (status, _, _) = env.get("/api/v1/user_refresh_token", Some(&good)).await;
    assert_eq!(status, 200, "the untampered token works");
}
