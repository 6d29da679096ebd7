//! Test support: the admin service on a private TestStack with a stateful fake GitHub API
//! (commits, trees, branches, pull requests of citizenlab/test-lists and its ooni-bot fork),
//! session tokens, and small HTTP helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ooni_admin::editor::github::TokenSource;
use ooni_admin::editor::EditorSettings;
use ooni_admin::{AdminService, State};
use ooni_platform::auth::{Role, UserClaims, AUD_USER_AUTH};
use ooni_testkit::fake_http::{FakeHttp, Recorded, Reply};
use ooni_testkit::{TestServer, TestStack};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const ORIGIN: &str = "citizenlab/test-lists";
pub const PUSH: &str = "ooni-bot/test-lists";
pub const TOKEN: &str = "test-github-token";

pub const IT_CSV: &str = "url,category_code,category_description,date_added,source,notes\n\
https://www.repubblica.it/,NEWS,News Media,2017-04-12,citizenlab,\n\
https://www.example.it/,MISC,Miscelaneous content,2020-01-01,ooni,\"a, b\"\n";
pub const GLOBAL_CSV: &str = "url,category_code,category_description,date_added,source,notes\n\
https://twitter.com/,GRP,Social Networking,2014-04-15,citizenlab,\n";

#[derive(Debug, Clone)]
pub struct FakePull {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub body: String,
    pub state: String,
    pub merged: bool,
}

/// The fake GitHub's data.
#[derive(Debug, Default)]
pub struct Gh {
    pub base_url: String,
    /// tree sha → files.
    pub trees: HashMap<String, HashMap<String, String>>,
    /// commit sha → tree sha.
    pub commits: HashMap<String, String>,
    pub master: String,
    /// push-repo branches.
    pub refs: HashMap<String, String>,
    pub pulls: Vec<FakePull>,
    pub next: u64,
    pub down: bool,
    pub unauthorized: u32,
}

impl Gh {
    fn id(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("{kind}{:04}", self.next)
    }

    /// Files of a commit (or of master for `master`).
    pub fn files_at(&self, git_ref: &str) -> Option<&HashMap<String, String>> {
        let sha = if git_ref == "master" {
            &self.master
        } else {
            git_ref
        };
        self.commits.get(sha).and_then(|t| self.trees.get(t))
    }

    /// A new master commit with `files`.
    pub fn commit_master(&mut self, files: HashMap<String, String>) {
        let tree = self.id("tree");
        let commit = self.id("commit");
        self.trees.insert(tree.clone(), files);
        self.commits.insert(commit.clone(), tree);
        self.master = commit;
    }

    fn pull_json(&self, p: &FakePull) -> Value {
        json!({
            "url": format!("{}/repos/{ORIGIN}/pulls/{}", self.base_url, p.number),
            "html_url": format!("https://github.com/{ORIGIN}/pull/{}", p.number),
            "number": p.number, "state": p.state, "merged": p.merged, "head": {"label": p.head},
        })
    }

    fn handle(&mut self, r: &Recorded) -> Reply {
        if self.down {
            return Reply::text(502, "bad gateway");
        }
        if r.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            self.unauthorized += 1;
            return Reply::text(401, "bad credentials");
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let path = r.path().to_owned();
        let query: HashMap<String, String> = r
            .target
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let origin = format!("/repos/{ORIGIN}");
        let push = format!("/repos/{PUSH}");
        match (r.method.as_str(), path.as_str()) {
            ("GET", p) if p == format!("{origin}/commits/master") => {
                let tree = self.commits[&self.master].clone();
                Reply::json(
                    200,
                    &json!({"sha": self.master, "commit": {"tree": {"sha": tree}}}),
                )
            }
            ("GET", p) if p.starts_with(&format!("{origin}/contents/")) => {
                let file = &p[format!("{origin}/contents/").len()..];
                let git_ref = query.get("ref").cloned().unwrap_or_else(|| "master".into());
                assert_eq!(r.header("accept"), Some("application/vnd.github.raw+json"));
                match self.files_at(&git_ref).and_then(|f| f.get(file)) {
                    Some(text) => Reply::text(200, text.clone()),
                    None => Reply::not_found(),
                }
            }
            ("POST", p) if p == format!("{push}/git/trees") => {
                let base = body["base_tree"].as_str().unwrap_or("");
                let mut files = self.trees.get(base).cloned().unwrap_or_default();
                for entry in body["tree"].as_array().unwrap() {
                    files.insert(
                        entry["path"].as_str().unwrap().to_owned(),
                        entry["content"].as_str().unwrap().to_owned(),
                    );
                }
                let sha = self.id("tree");
                self.trees.insert(sha.clone(), files);
                Reply::json(201, &json!({"sha": sha}))
            }
            ("POST", p) if p == format!("{push}/git/commits") => {
                let sha = self.id("commit");
                self.commits
                    .insert(sha.clone(), body["tree"].as_str().unwrap().to_owned());
                Reply::json(201, &json!({"sha": sha}))
            }
            ("PATCH", p) if p.starts_with(&format!("{push}/git/refs/heads/")) => {
                let branch = &p[format!("{push}/git/refs/heads/").len()..];
                match self.refs.get_mut(branch) {
                    Some(sha) => {
                        *sha = body["sha"].as_str().unwrap().to_owned();
                        Reply::json(200, &json!({"ref": format!("refs/heads/{branch}")}))
                    }
                    None => Reply::json(422, &json!({"message": "Reference does not exist"})),
                }
            }
            ("POST", p) if p == format!("{push}/git/refs") => {
                let name = body["ref"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("refs/heads/")
                    .to_owned();
                self.refs
                    .insert(name, body["sha"].as_str().unwrap().to_owned());
                Reply::json(201, &json!({"ref": body["ref"]}))
            }
            ("DELETE", p) if p.starts_with(&format!("{push}/git/refs/heads/")) => {
                let branch = &p[format!("{push}/git/refs/heads/").len()..];
                self.refs.remove(branch);
                Reply::text(204, "")
            }
            ("POST", p) if p == format!("{origin}/pulls") => {
                let head = body["head"].as_str().unwrap().to_owned();
                if self
                    .pulls
                    .iter()
                    .any(|x| x.head == head && x.state == "open")
                {
                    return Reply::json(422, &json!({"message": "A pull request already exists"}));
                }
                let number = self.pulls.len() as u64 + 1;
                let pull = FakePull {
                    number,
                    head,
                    base: body["base"].as_str().unwrap().to_owned(),
                    body: body["body"].as_str().unwrap_or("").to_owned(),
                    state: "open".into(),
                    merged: false,
                };
                let out = self.pull_json(&pull);
                self.pulls.push(pull);
                Reply::json(201, &out)
            }
            ("GET", p) if p == format!("{origin}/pulls") => {
                let head = query.get("head").cloned().unwrap_or_default();
                let open: Vec<Value> = self
                    .pulls
                    .iter()
                    .filter(|x| x.state == "open" && x.head == head)
                    .map(|x| self.pull_json(x))
                    .collect();
                Reply::json(200, &Value::Array(open))
            }
            (m, p) if p.starts_with(&format!("{origin}/pulls/")) => {
                let n: usize = p.rsplit('/').next().unwrap().parse().unwrap();
                let Some(pull) = self.pulls.get(n - 1).cloned() else {
                    return Reply::not_found();
                };
                match m {
                    "GET" => Reply::json(200, &self.pull_json(&pull)),
                    "PATCH" if pull.merged => Reply::json(422, &json!({"message": "merged"})),
                    "PATCH" => {
                        self.pulls[n - 1].state = body["state"].as_str().unwrap().to_owned();
                        Reply::json(200, &self.pull_json(&self.pulls[n - 1]))
                    }
                    _ => Reply::not_found(),
                }
            }
            _ => Reply::not_found(),
        }
    }
}

pub struct Admin {
    pub stack: TestStack,
    pub server: TestServer,
    pub github: FakeHttp,
    pub gh: Arc<Mutex<Gh>>,
    pub http: reqwest::Client,
}

impl Admin {
    pub async fn start() -> Admin {
        Admin::start_with(|_| TokenSource::Fixed(ooni_adapters::Secret::new(TOKEN))).await
    }

    /// Like [`Admin::start`], with the GitHub token from the source `token` builds for the
    /// stack's AWS clients.
    pub async fn start_with(token: impl FnOnce(&TestStack) -> TokenSource) -> Admin {
        let stack = TestStack::start().await;
        let gh = Arc::new(Mutex::new(Gh::default()));
        let g = gh.clone();
        let github = FakeHttp::start(move |r| g.lock().unwrap().handle(r)).await;
        {
            let mut g = gh.lock().unwrap();
            g.base_url = github.base_url.clone();
            g.commit_master(
                [
                    ("lists/it.csv".to_owned(), IT_CSV.to_owned()),
                    ("lists/global.csv".to_owned(), GLOBAL_CSV.to_owned()),
                ]
                .into(),
            );
        }
        let settings = EditorSettings {
            api_url: github.base_url.clone(),
            web_url: "https://github.com".into(),
            origin_repo: ORIGIN.into(),
            push_repo: PUSH.into(),
            base_branch: "master".into(),
            max_edits: 20,
        };
        let source = token(&stack);
        let state = State::new(stack.ctx.clone(), settings, source);
        let service = AdminService::with_state(stack.ctx.clone(), state);
        let server = stack.serve(Arc::new(service)).await;
        Admin {
            stack,
            server,
            github,
            gh,
            http: reqwest::Client::new(),
        }
    }

    pub fn token(&self, account_id: &str, role: Role) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = UserClaims {
            nbf: now - 10,
            iat: now - 10,
            exp: now + 3600,
            aud: AUD_USER_AUTH.into(),
            login_time: now - 10,
            role,
            account_id: account_id.into(),
            email_address: Some(format!("{account_id}@example.org")),
        };
        ooni_testkit::jwt_keys().user.sign(&claims).unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.server.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        finish(req).await
    }

    pub async fn get_text(&self, path: &str) -> (u16, String, String) {
        let resp = self.http.get(self.server.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, ct, resp.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(self.server.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        finish(req).await
    }

    pub fn gh(&self) -> std::sync::MutexGuard<'_, Gh> {
        self.gh.lock().unwrap()
    }
}

async fn finish(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A random 32-hex-character account id.
pub fn account() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
