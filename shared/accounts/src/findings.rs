//! Findings (incidents, upstream `oonifindings`): search, show by id or slug, create,
//! update, delete, publish and unpublish, stored in the DynamoDB `findings` table.
//!
//! Table layout: `pk = "findings"`, `sk = <id>`, the finding as JSON in `doc`. Findings are
//! few (hundreds), so search reads the partition and filters and sorts in memory.
//!
//! Permissions: any logged-in user may create findings and update or delete their own (the
//! `email_address` sent must be theirs); admins may update or delete any and (un)publish.
//! Anonymous callers see published findings; users also see their own; admins see all. The
//! author's e-mail address is blanked for everyone but admins.

use crate::util::{
    as_detail, char_len, invalid, invalid_param, now_seconds, optional_user, query_bool, wire_time,
    wire_time_opt,
};
use crate::State;
use chrono::{DateTime, Datelike, Utc};
use lambda_http::Request;
use ooni_adapters::dynamo::item_str;
use ooni_adapters::{DynamoError, DynamoTable, ItemBuilder};
use ooni_platform::auth::{Role, UserClaims};
use ooni_platform::request::{json_body_422, path_param, query, query_all};
use ooni_platform::response::{json, Cache};
use ooni_platform::{ApiError, HttpResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// A stored finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub short_description: String,
    pub text: String,
    #[serde(with = "wire_time")]
    pub start_time: DateTime<Utc>,
    #[serde(with = "wire_time_opt")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(with = "wire_time")]
    pub create_time: DateTime<Utc>,
    #[serde(with = "wire_time")]
    pub update_time: DateTime<Utc>,
    pub reported_by: String,
    pub creator_account_id: String,
    pub email_address: String,
    pub published: bool,
    pub event_type: String,
    #[serde(rename = "ASNs")]
    pub asns: Vec<i64>,
    #[serde(rename = "CCs")]
    pub ccs: Vec<String>,
    pub themes: Vec<String>,
    pub tags: Vec<String>,
    pub test_names: Vec<String>,
    pub domains: Vec<String>,
    pub links: Vec<String>,
}

/// The create/update body; unknown keys (e.g. a `show` answer posted back) are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct FindingRequest {
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    #[serde(default)]
    pub email_address: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub short_description: String,
    #[serde(with = "wire_time")]
    pub start_time: DateTime<Utc>,
    #[serde(default, with = "wire_time_opt")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reported_by: String,
    #[serde(default)]
    pub published: bool,
    #[serde(default)]
    pub event_type: String,
    #[serde(default, rename = "ASNs")]
    pub asns: Vec<i64>,
    #[serde(default, rename = "CCs")]
    pub ccs: Vec<String>,
    #[serde(default)]
    pub themes: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub test_names: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub links: Vec<String>,
}

impl FindingRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.title.is_empty() {
            return Err(invalid(&["title"], "Value error, field cannot be empty"));
        }
        if self.text.is_empty() {
            return Err(invalid(&["text"], "Value error, field cannot be empty"));
        }
        if char_len(&self.title) > 1000 {
            return Err(invalid(
                &["title"],
                "String should have at most 1000 characters",
            ));
        }
        if self.end_time.is_some_and(|e| e < self.start_time) {
            return Err(invalid(
                &["end_time"],
                "Value error, end_time must not be before start_time",
            ));
        }
        Ok(())
    }

    fn id_string(&self) -> Option<String> {
        match &self.id {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// Upstream slug rule: `f"{YYYY}-{title lowercased, spaces→-, [^0-9a-zA-Z-] stripped}"[:64]`,
/// with the year of the event's start.
pub fn slug(start_time: &DateTime<Utc>, title: &str) -> String {
    let words: String = title
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' { '-' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("{}-{}", start_time.year(), words)
        .chars()
        .take(64)
        .collect()
}

/// Upstream `generate_random_intuid`: 4 random bytes as an integer, × 100, + collector id.
pub fn random_id(collector_id: u64) -> String {
    (u64::from(rand::random::<u32>()) * 100 + collector_id).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum FindingStoreError {
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("stored finding is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl From<FindingStoreError> for ApiError {
    fn from(e: FindingStoreError) -> Self {
        match e {
            FindingStoreError::Dynamo(d) if d.is_transient() => ApiError::unavailable(d),
            other => ApiError::internal(other),
        }
    }
}

/// The DynamoDB side of findings.
#[derive(Debug, Clone)]
pub struct FindingStore {
    table: DynamoTable,
}

impl FindingStore {
    pub fn new(table: DynamoTable) -> Self {
        FindingStore { table }
    }

    fn item(f: &Finding) -> Result<ooni_adapters::Item, FindingStoreError> {
        Ok(ItemBuilder::new("findings", f.id.clone())
            .string("doc", serde_json::to_string(f)?)
            .build())
    }

    pub async fn all(&self) -> Result<Vec<Finding>, FindingStoreError> {
        let items = self.table.query_all("findings", None).await?;
        items
            .iter()
            .map(|i| Ok(serde_json::from_str(item_str(i, "doc").unwrap_or("null"))?))
            .collect()
    }

    pub async fn get(&self, id: &str) -> Result<Option<Finding>, FindingStoreError> {
        match self.table.get("findings", id).await? {
            Some(i) => Ok(Some(serde_json::from_str(
                item_str(&i, "doc").unwrap_or("null"),
            )?)),
            None => Ok(None),
        }
    }

    /// Writes a new finding; `false` if the id is taken.
    pub async fn insert(&self, f: &Finding) -> Result<bool, FindingStoreError> {
        Ok(self.table.put_if_not_exists(Self::item(f)?).await?)
    }

    pub async fn put(&self, f: &Finding) -> Result<(), FindingStoreError> {
        Ok(self.table.put(Self::item(f)?).await?)
    }

    pub async fn delete(&self, id: &str) -> Result<(), FindingStoreError> {
        Ok(self.table.delete("findings", id).await?)
    }
}

/// Who is asking, for visibility and field masking.
struct Viewer {
    account_id: Option<String>,
    admin: bool,
}

impl Viewer {
    fn from(claims: Option<&UserClaims>) -> Self {
        Viewer {
            account_id: claims.map(|c| c.account_id.clone()),
            admin: claims.is_some_and(|c| c.role == Role::Admin),
        }
    }

    fn is_mine(&self, f: &Finding) -> bool {
        self.account_id.as_deref() == Some(f.creator_account_id.as_str())
    }

    fn can_see(&self, f: &Finding) -> bool {
        f.published || self.admin || self.is_mine(f)
    }

    /// The public shape: e-mail for admins only, creator id for admins and the owner.
    fn render(&self, f: &Finding, with_text: bool) -> serde_json::Value {
        let mut v = serde_json::to_value(f).unwrap_or_else(|_| json!({}));
        let mine = self.is_mine(f);
        if let Some(o) = v.as_object_mut() {
            if !self.admin {
                o.insert("email_address".into(), json!(""));
            }
            if !(self.admin || mine) {
                o.insert("creator_account_id".into(), serde_json::Value::Null);
            }
            if !with_text {
                o.remove("text");
            }
            o.insert("mine".into(), json!(mine));
        }
        v
    }
}

fn not_found() -> ApiError {
    as_detail(ApiError::not_found("Incident not found"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Create,
    Update,
    Start,
}

/// `GET /api/v1/incidents/search?only_mine&theme&country_code&asn&domain&sort_by&order`.
pub async fn search(s: Arc<State>, req: Request) -> HttpResult {
    let claims = optional_user(&s.auth, &req).await?;
    let viewer = Viewer::from(claims.as_ref());
    let only_mine = query_bool(&req, "only_mine")?.unwrap_or(false);
    let themes = query_all(&req, "theme");
    let ccs: Vec<String> = query_all(&req, "country_code")
        .iter()
        .map(|c| c.to_uppercase())
        .collect();
    let domains = query_all(&req, "domain");
    let asns = query_all(&req, "asn")
        .iter()
        .map(|a| a.trim_start_matches("AS").parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| invalid_param("query", "asn", "Input should be a valid integer"))?;
    let sort_by = match query(&req, "sort_by").as_deref() {
        None | Some("create_time") => SortBy::Create,
        Some("update_time") => SortBy::Update,
        Some("start_time") => SortBy::Start,
        Some(_) => {
            return Err(invalid_param(
                "query",
                "sort_by",
                "Input should be 'create_time', 'update_time' or 'start_time'",
            ))
        }
    };
    let descending = match query(&req, "order").as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => {
            return Err(invalid_param(
                "query",
                "order",
                "Input should be 'asc' or 'desc'",
            ))
        }
    };
    if only_mine && viewer.account_id.is_none() {
        return json(&json!({"incidents": []}), Cache::NoCache);
    }
    let mut found: Vec<Finding> = s
        .findings
        .all()
        .await?
        .into_iter()
        .filter(|f| viewer.can_see(f))
        .filter(|f| !only_mine || viewer.is_mine(f))
        .filter(|f| themes.is_empty() || f.themes.iter().any(|t| themes.contains(t)))
        .filter(|f| ccs.is_empty() || f.ccs.iter().any(|c| ccs.contains(&c.to_uppercase())))
        .filter(|f| asns.is_empty() || f.asns.iter().any(|a| asns.contains(a)))
        .filter(|f| domains.is_empty() || f.domains.iter().any(|d| domains.contains(d)))
        .collect();
    found.sort_by(|a, b| {
        let key = |f: &Finding| match sort_by {
            SortBy::Create => f.create_time,
            SortBy::Update => f.update_time,
            SortBy::Start => f.start_time,
        };
        let o = key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id));
        if descending {
            o.reverse()
        } else {
            o
        }
    });
    let out: Vec<serde_json::Value> = found.iter().map(|f| viewer.render(f, false)).collect();
    json(&json!({ "incidents": out }), Cache::NoCache)
}

/// `GET /api/v1/incidents/show/{id or slug}`: `{incident: {...}}`.
pub async fn show(s: Arc<State>, req: Request) -> HttpResult {
    let key = path_param(&req, "incident_id")?;
    let claims = optional_user(&s.auth, &req).await?;
    let viewer = Viewer::from(claims.as_ref());
    let finding = if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
        s.findings.get(&key).await?
    } else {
        let mut by_slug: Vec<Finding> = s
            .findings
            .all()
            .await?
            .into_iter()
            .filter(|f| f.slug == key)
            .collect();
        by_slug.sort_by_key(|f| f.create_time);
        by_slug.into_iter().find(|f| viewer.can_see(f))
    };
    let finding = finding
        .filter(|f| viewer.can_see(f))
        .ok_or_else(not_found)?;
    json(
        &json!({ "incident": viewer.render(&finding, true) }),
        Cache::NoCache,
    )
}

fn response(id: &str) -> HttpResult {
    json(&json!({"r": 1, "id": id}), Cache::NoCache)
}

/// A slug no other finding uses (the id is appended on a clash).
async fn unique_slug(s: &State, base: String, id: &str) -> Result<String, ApiError> {
    let taken = s
        .findings
        .all()
        .await?
        .iter()
        .any(|f| f.slug == base && f.id != id);
    if !taken {
        return Ok(base);
    }
    let keep = 64usize.saturating_sub(id.len() + 1);
    Ok(format!(
        "{}-{id}",
        base.chars().take(keep).collect::<String>()
    ))
}

/// `POST /api/v1/incidents/create` (any logged-in user; the e-mail must be the caller's).
pub async fn create(s: Arc<State>, req: Request) -> HttpResult {
    let claims = s.auth.require(&req, Role::User).await.map_err(as_detail)?;
    let body: FindingRequest = json_body_422(&req)?;
    body.validate()?;
    let email = body.email_address.trim().to_lowercase();
    if s.config.hasher.account_id(&email) != claims.account_id {
        return Err(ApiError::bad_request_detail(
            "Invalid email address for creator account",
        ));
    }
    if body.published {
        return Err(ApiError::bad_request_detail(
            "Invalid publish parameter on create request",
        ));
    }
    let now = now_seconds();
    for _ in 0..5 {
        let id = random_id(s.config.collector_id);
        let slug = unique_slug(&s, slug(&body.start_time, &body.title), &id).await?;
        let f = Finding {
            id: id.clone(),
            slug,
            title: body.title.clone(),
            short_description: body.short_description.clone(),
            text: body.text.clone(),
            start_time: body.start_time,
            end_time: body.end_time,
            create_time: now,
            update_time: now,
            reported_by: body.reported_by.clone(),
            creator_account_id: claims.account_id.clone(),
            email_address: email.clone(),
            published: false,
            event_type: body.event_type.clone(),
            asns: body.asns.clone(),
            ccs: body.ccs.clone(),
            themes: body.themes.clone(),
            tags: body.tags.clone(),
            test_names: body.test_names.clone(),
            domains: body.domains.clone(),
            links: body.links.clone(),
        };
        if s.findings.insert(&f).await? {
            tracing::info!(incident_id = %id, "finding created");
            return response(&id);
        }
    }
    Err(ApiError::internal(anyhow::anyhow!(
        "could not allocate a free finding id"
    )))
}

/// Non-admins may act only on their own findings, with their own e-mail address.
fn check_owner(
    s: &State,
    claims: &UserClaims,
    existing: &Finding,
    email: &str,
) -> Result<(), ApiError> {
    if claims.role == Role::Admin {
        return Ok(());
    }
    if existing.creator_account_id != claims.account_id {
        return Err(as_detail(ApiError::forbidden(
            "Attempted to create, update or delete an item belonging to another user",
        )));
    }
    if s.config.hasher.account_id(&email.trim().to_lowercase()) != claims.account_id {
        return Err(as_detail(ApiError::forbidden(
            "Invalid email address for owner account",
        )));
    }
    Ok(())
}

/// `POST /api/v1/incidents/update`.
pub async fn update(s: Arc<State>, req: Request) -> HttpResult {
    let claims = s.auth.require(&req, Role::User).await.map_err(as_detail)?;
    let body: FindingRequest = json_body_422(&req)?;
    body.validate()?;
    let id = body.id_string().ok_or_else(not_found)?;
    let existing = s.findings.get(&id).await?.ok_or_else(not_found)?;
    check_owner(&s, &claims, &existing, &body.email_address)?;
    if claims.role != Role::Admin && body.published != existing.published {
        return Err(as_detail(ApiError::forbidden(
            "Not enough permissions to publish",
        )));
    }
    let f = Finding {
        title: body.title,
        short_description: body.short_description,
        text: body.text,
        start_time: body.start_time,
        end_time: body.end_time,
        update_time: now_seconds(),
        reported_by: body.reported_by,
        published: body.published,
        event_type: body.event_type,
        asns: body.asns,
        ccs: body.ccs,
        themes: body.themes,
        tags: body.tags,
        test_names: body.test_names,
        domains: body.domains,
        links: body.links,
        ..existing
    };
    s.findings.put(&f).await?;
    response(&id)
}

#[derive(Debug, Deserialize)]
struct IdRequest {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    email_address: String,
}

impl IdRequest {
    fn id(&self) -> Option<String> {
        match &self.id {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// `POST /api/v1/incidents/delete`.
pub async fn delete(s: Arc<State>, req: Request) -> HttpResult {
    let claims = s.auth.require(&req, Role::User).await.map_err(as_detail)?;
    let body: IdRequest = json_body_422(&req)?;
    let id = body.id().ok_or_else(not_found)?;
    let existing = s.findings.get(&id).await?.ok_or_else(not_found)?;
    check_owner(&s, &claims, &existing, &body.email_address)?;
    s.findings.delete(&id).await?;
    tracing::info!(incident_id = %id, "finding deleted");
    response(&id)
}

/// `POST /api/v1/incidents/{publish|unpublish}` (admin).
pub async fn set_published(s: Arc<State>, req: Request, published: bool) -> HttpResult {
    s.auth.require(&req, Role::Admin).await.map_err(as_detail)?;
    let body: IdRequest = json_body_422(&req)?;
    let id = body.id().ok_or_else(not_found)?;
    let mut f = s.findings.get(&id).await?.ok_or_else(not_found)?;
    f.published = published;
    f.update_time = now_seconds();
    s.findings.put(&f).await?;
    response(&id)
}

/// The one `IncidentsWrite` function serves five routes; dispatch on the path.
pub async fn write(s: Arc<State>, req: Request) -> HttpResult {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    match path.rsplit('/').next() {
        Some("create") => create(s, req).await,
        Some("update") => update(s, req).await,
        Some("delete") => delete(s, req).await,
        Some("publish") => set_published(s, req, true).await,
        Some("unpublish") => set_published(s, req, false).await,
        _ => Err(ApiError::not_found("not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn slugs_are_year_dash_title_lowercased_dashed_and_stripped_to_64_chars() {
        let t = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
        assert_eq!(
            slug(&t, "Iran blocks WhatsApp!"),
            "2024-iran-blocks-whatsapp"
        );
        assert_eq!(slug(&t, "Ünïcode & co."), "2024-ncode--co");
        assert_eq!(slug(&t, &"x".repeat(100)).len(), 64);
    }

    #[test]
    fn ids_end_with_the_collector_id() {
        let id: u64 = random_id(7).parse().unwrap();
        assert_eq!(id % 100, 7);
    }

    #[test]
    fn empty_title_or_text_and_an_end_before_the_start_are_422() {
        let base = json!({"title": "t", "text": "x", "start_time": "2024-01-02T00:00:00.000000Z"});
        let ok: FindingRequest = serde_json::from_value(base.clone()).unwrap();
        assert!(ok.validate().is_ok());
        for (k, v) in [
            ("title", json!("")),
            ("text", json!("")),
            ("end_time", json!("2024-01-01T00:00:00Z")),
        ] {
            let mut b = base.clone();
            b[k] = v;
            let r: FindingRequest = serde_json::from_value(b).unwrap();
            assert_eq!(r.validate().unwrap_err().status, 422, "{k}");
        }
    }

    fn finding(owner: &str, published: bool) -> Finding {
        let t = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
        Finding {
            id: "1".into(),
            slug: "s".into(),
            title: "t".into(),
            short_description: String::new(),
            text: "x".into(),
            start_time: t,
            end_time: None,
            create_time: t,
            update_time: t,
            reported_by: String::new(),
            creator_account_id: owner.into(),
            email_address: "a@b.org".into(),
            published,
            event_type: String::new(),
            asns: vec![],
            ccs: vec![],
            themes: vec![],
            tags: vec![],
            test_names: vec![],
            domains: vec![],
            links: vec![],
        }
    }

    #[test]
    fn only_admins_see_the_email_and_drafts_are_visible_to_their_owner() {
        let anon = Viewer {
            account_id: None,
            admin: false,
        };
        let owner = Viewer {
            account_id: Some("o".into()),
            admin: false,
        };
        let admin = Viewer {
            account_id: Some("a".into()),
            admin: true,
        };
        let draft = finding("o", false);
        assert!(!anon.can_see(&draft) && owner.can_see(&draft) && admin.can_see(&draft));
        assert_eq!(owner.render(&draft, true)["email_address"], "");
        assert_eq!(owner.render(&draft, true)["mine"], true);
        assert_eq!(admin.render(&draft, true)["email_address"], "a@b.org");
        assert_eq!(
            anon.render(&finding("o", true), false)["creator_account_id"],
            serde_json::Value::Null
        );
        assert!(anon
            .render(&finding("o", true), false)
            .get("text")
            .is_none());
    }
}
