//! OONI Run v2 links (upstream `oonirun` service, spec bk-005): create, edit, get, full and
//! engine descriptors, revisions and listing, stored in the DynamoDB `oonirun` table.
//!
//! Table layout (string keys `pk`, `sk`):
//! - `pk = "counter"`, `sk = "oonirun_link_id"`: attribute `n`, the id sequence
//!   (atomic increment; ids are `9999 + n`, so the first is 10000).
//! - `pk = "links"`, `sk = <id, zero-padded to 20 digits>`: the link's current state as JSON in
//!   `doc` (metadata, owner, latest revision and its nettests). Listing reads this partition.
//! - `pk = "link#<id>"`, `sk = "rev#<revision, zero-padded to 10 digits>"`: one revision's
//!   nettests and creation time in `doc`, written with put-if-absent so two concurrent edits
//!   cannot both claim a revision number.

use crate::prio::TargetsSource;
use crate::util::{
    as_detail, char_len, fmt_datetime, invalid, invalid_param, now_seconds, optional_user,
    query_bool, wire_time,
};
use crate::State;
use chrono::{DateTime, Duration, Utc};
use lambda_http::Request;
use ooni_adapters::dynamo::item_str;
use ooni_adapters::{DynamoError, DynamoTable, ItemBuilder};
use ooni_platform::auth::Role;
use ooni_platform::request::{header, json_body_422, path_param};
use ooni_platform::response::{json, Cache};
use ooni_platform::{ApiError, HttpResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// One nettest of a link. Serialized with all seven keys, as upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nettest {
    #[serde(default)]
    pub test_name: String,
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    #[serde(default)]
    pub options: Map<String, Value>,
    #[serde(default)]
    pub is_background_run_enabled_default: bool,
    #[serde(default)]
    pub is_manual_run_enabled_default: bool,
    #[serde(default)]
    pub targets_name: Option<String>,
    #[serde(default)]
    pub inputs_extra: Option<Vec<Map<String, Value>>>,
}

/// The body of create and edit (`OONIRunLinkCreateEdit`); unknown keys are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct LinkRequest {
    pub name: String,
    pub short_description: String,
    pub description: String,
    pub author: String,
    pub nettests: Vec<Nettest>,
    #[serde(default)]
    pub name_intl: Option<Map<String, Value>>,
    #[serde(default)]
    pub short_description_intl: Option<Map<String, Value>>,
    #[serde(default)]
    pub description_intl: Option<Map<String, Value>>,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default, with = "crate::util::wire_time_opt")]
    pub expiration_date: Option<DateTime<Utc>>,
}

fn check_len(field: &str, v: &str, min: usize, max: Option<usize>) -> Result<(), ApiError> {
    let n = char_len(v);
    if n < min {
        return Err(invalid(
            &[field],
            format!("String should have at least {min} characters"),
        ));
    }
    if let Some(max) = max.filter(|m| n > *m) {
        return Err(invalid(
            &[field],
            format!("String should have at most {max} characters"),
        ));
    }
    Ok(())
}

fn check_intl(field: &str, v: &Option<Map<String, Value>>) -> Result<(), ApiError> {
    for value in v.iter().flat_map(|m| m.values()) {
        match value.as_str() {
            Some(s) if char_len(s) >= 2 => {}
            Some(_) => {
                return Err(invalid(
                    &[field],
                    "Value error, must be at least 2 characters",
                ))
            }
            None => return Err(invalid(&[field], "Input should be a valid string")),
        }
    }
    Ok(())
}

fn valid_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit())
}

impl Nettest {
    fn validate(&self, i: usize) -> Result<(), ApiError> {
        let idx = i.to_string();
        // Upstream validates test_name only when given (the "" default is not checked).
        if !self.test_name.is_empty() {
            check_len("test_name", &self.test_name, 2, Some(100)).map_err(|_| {
                invalid(
                    &["nettests", &idx, "test_name"],
                    "String should have 2 to 100 characters",
                )
            })?;
        }
        if let Some(extra) = &self.inputs_extra {
            if self
                .inputs
                .as_ref()
                .is_none_or(|inputs| inputs.len() != extra.len())
            {
                return Err(invalid(
                    &["nettests", &idx],
                    "Value error, When provided, inputs_extra should be the same length as inputs",
                ));
            }
        }
        Ok(())
    }

    /// Upstream `validate_no_inputs_and_targets_name` (a 422 with `{"error": ...}` detail).
    fn validate_targets(&self) -> Result<(), ApiError> {
        if self.targets_name.is_some() && (self.inputs.is_some() || self.inputs_extra.is_some()) {
            return Err(ApiError::unprocessable(
                json!({"error": "When targets_name is provided, you can't provide inputs or inputs_extra"}),
            ));
        }
        Ok(())
    }
}

impl LinkRequest {
    /// Field validation with upstream's limits; every failure is a 422.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_len("name", &self.name, 2, Some(50))?;
        check_len("short_description", &self.short_description, 2, Some(200))?;
        check_len("description", &self.description, 2, None)?;
        check_len("author", &self.author, 2, Some(100))?;
        check_intl("name_intl", &self.name_intl)?;
        check_intl("short_description_intl", &self.short_description_intl)?;
        check_intl("description_intl", &self.description_intl)?;
        if let Some(c) = &self.color {
            if !valid_color(c) {
                return Err(invalid(
                    &["color"],
                    "String should match pattern '^#(?:[0-9a-fA-F]{6})$'",
                ));
            }
        }
        for (i, nt) in self.nettests.iter().enumerate() {
            nt.validate(i)?;
        }
        for nt in &self.nettests {
            nt.validate_targets()?;
        }
        Ok(())
    }
}

/// A link's current state (the `links` partition item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkDoc {
    pub oonirun_link_id: String,
    pub creator_account_id: String,
    pub name: String,
    pub short_description: String,
    pub description: String,
    pub author: String,
    pub name_intl: Option<Map<String, Value>>,
    pub short_description_intl: Option<Map<String, Value>>,
    pub description_intl: Option<Map<String, Value>>,
    pub icon: Option<String>,
    pub color: Option<String>,
    pub expiration_date: DateTime<Utc>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
    pub revision: u64,
    /// Creation time of the latest revision.
    pub revision_created: DateTime<Utc>,
    pub nettests: Vec<Nettest>,
}

/// One stored revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionDoc {
    pub revision: u64,
    pub date_created: DateTime<Utc>,
    pub nettests: Vec<Nettest>,
}

/// The public shape of a link (17 keys).
#[derive(Debug, Serialize)]
pub struct LinkView<'a> {
    pub oonirun_link_id: &'a str,
    #[serde(with = "wire_time")]
    pub date_created: DateTime<Utc>,
    #[serde(with = "wire_time")]
    pub date_updated: DateTime<Utc>,
    pub revision: String,
    pub is_mine: bool,
    pub is_expired: bool,
    pub name: &'a str,
    pub short_description: &'a str,
    pub description: &'a str,
    pub author: &'a str,
    pub nettests: &'a [Nettest],
    pub name_intl: &'a Option<Map<String, Value>>,
    pub short_description_intl: &'a Option<Map<String, Value>>,
    pub description_intl: &'a Option<Map<String, Value>>,
    pub icon: &'a Option<String>,
    pub color: &'a Option<String>,
    #[serde(with = "wire_time")]
    pub expiration_date: DateTime<Utc>,
}

impl LinkDoc {
    fn view<'a>(
        &'a self,
        nettests: &'a [Nettest],
        revision: u64,
        date_created: DateTime<Utc>,
        account: Option<&str>,
    ) -> LinkView<'a> {
        LinkView {
            oonirun_link_id: &self.oonirun_link_id,
            date_created,
            date_updated: self.date_updated,
            revision: revision.to_string(),
            is_mine: account.is_some_and(|a| a == self.creator_account_id),
            is_expired: self.expiration_date < now_seconds(),
            name: &self.name,
            short_description: &self.short_description,
            description: &self.description,
            author: &self.author,
            nettests,
            name_intl: &self.name_intl,
            short_description_intl: &self.short_description_intl,
            description_intl: &self.description_intl,
            icon: &self.icon,
            color: &self.color,
            expiration_date: self.expiration_date,
        }
    }
}

/// The DynamoDB side of links.
#[derive(Debug, Clone)]
pub struct LinkStore {
    table: DynamoTable,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("stored document is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("revision {0} was written concurrently")]
    Conflict(u64),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Dynamo(d) if d.is_transient() => ApiError::unavailable(d),
            StoreError::Conflict(_) => ApiError::new(
                http::StatusCode::CONFLICT,
                ooni_platform::ErrorBody::Detail(json!(
                    "the link was edited concurrently, please retry"
                )),
            ),
            other => ApiError::internal(other),
        }
    }
}

fn links_sk(id: u64) -> String {
    format!("{id:020}")
}

fn rev_sk(rev: u64) -> String {
    format!("rev#{rev:010}")
}

fn doc<T: serde::de::DeserializeOwned>(item: &ooni_adapters::Item) -> Result<T, StoreError> {
    Ok(serde_json::from_str(
        item_str(item, "doc").unwrap_or("null"),
    )?)
}

pub const FIRST_LINK_ID: u64 = 10_000;

impl LinkStore {
    pub fn new(table: DynamoTable) -> Self {
        LinkStore { table }
    }

    /// Allocates the next link id atomically (10000, 10001, ...).
    pub async fn next_id(&self) -> Result<u64, StoreError> {
        let n = self
            .table
            .increment("counter", "oonirun_link_id", "n", 1)
            .await?;
        Ok(FIRST_LINK_ID - 1 + u64::try_from(n.max(1)).unwrap_or(1))
    }

    pub async fn get(&self, id: u64) -> Result<Option<LinkDoc>, StoreError> {
        match self.table.get("links", &links_sk(id)).await? {
            Some(item) => Ok(Some(doc(&item)?)),
            None => Ok(None),
        }
    }

    pub async fn put(&self, link: &LinkDoc) -> Result<(), StoreError> {
        let id: u64 = link.oonirun_link_id.parse().unwrap_or(0);
        let item = ItemBuilder::new("links", links_sk(id))
            .string("doc", serde_json::to_string(link)?)
            .build();
        Ok(self.table.put(item).await?)
    }

    /// Writes a revision unless it exists.
    pub async fn add_revision(&self, id: u64, rev: &RevisionDoc) -> Result<(), StoreError> {
        let item = ItemBuilder::new(format!("link#{id}"), rev_sk(rev.revision))
            .string("doc", serde_json::to_string(rev)?)
            .build();
        if self.table.put_if_not_exists(item).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict(rev.revision))
        }
    }

    pub async fn revision(&self, id: u64, rev: u64) -> Result<Option<RevisionDoc>, StoreError> {
        match self.table.get(&format!("link#{id}"), &rev_sk(rev)).await? {
            Some(item) => Ok(Some(doc(&item)?)),
            None => Ok(None),
        }
    }

    /// Every revision, newest first.
    pub async fn revisions(&self, id: u64) -> Result<Vec<RevisionDoc>, StoreError> {
        let items = self
            .table
            .query_all(&format!("link#{id}"), Some("rev#"))
            .await?;
        let mut revs = items
            .iter()
            .map(doc::<RevisionDoc>)
            .collect::<Result<Vec<_>, _>>()?;
        revs.sort_by_key(|r| std::cmp::Reverse(r.revision));
        Ok(revs)
    }

    /// Every link, by id.
    pub async fn all(&self) -> Result<Vec<LinkDoc>, StoreError> {
        let items = self.table.query_all("links", None).await?;
        items.iter().map(doc::<LinkDoc>).collect()
    }
}

fn parse_link_id(req: &Request) -> Result<u64, ApiError> {
    // Ids are numeric; anything else cannot exist.
    path_param(req, "oonirun_link_id")?
        .parse()
        .map_err(|_| as_detail(ApiError::not_found("OONI Run link not found")))
}

fn not_found() -> ApiError {
    as_detail(ApiError::not_found("OONI Run link not found"))
}

/// `latest` or a number, else 422 (upstream's path pattern `^(latest|\d+)$`).
fn parse_revision(req: &Request) -> Result<Option<u64>, ApiError> {
    let r = path_param(req, "revision_number")?;
    if r == "latest" {
        return Ok(None);
    }
    if r.is_empty() || !r.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_param(
            "path",
            "revision_number",
            "invalid revision number specified, must be 'latest' or a number",
        ));
    }
    r.parse().map(Some).map_err(|_| not_found())
}

fn body(req: &Request) -> Result<LinkRequest, ApiError> {
    let body: LinkRequest = json_body_422(req)?;
    body.validate()?;
    Ok(body)
}

/// `POST /api/v2/oonirun/links` (user or admin).
pub async fn create(s: Arc<State>, req: Request) -> HttpResult {
    let claims = s.auth.require(&req, Role::User).await.map_err(as_detail)?;
    let body = body(&req)?;
    if Some(body.author.as_str()) != claims.email_address.as_deref() {
        return Err(ApiError::bad_request_detail(
            "email_address must match the email address of the user who created the oonirun link",
        ));
    }
    let now = now_seconds();
    let id = s.links.next_id().await?;
    let link = LinkDoc {
        oonirun_link_id: id.to_string(),
        creator_account_id: claims.account_id.clone(),
        name: body.name,
        short_description: body.short_description,
        description: body.description,
        author: body.author,
        name_intl: body.name_intl,
        short_description_intl: body.short_description_intl,
        description_intl: body.description_intl,
        icon: body.icon,
        color: body.color,
        expiration_date: body.expiration_date.unwrap_or(now + Duration::days(180)),
        date_created: now,
        date_updated: now,
        revision: 1,
        revision_created: now,
        nettests: body.nettests,
    };
    s.links
        .add_revision(
            id,
            &RevisionDoc {
                revision: 1,
                date_created: now,
                nettests: link.nettests.clone(),
            },
        )
        .await?;
    s.links.put(&link).await?;
    tracing::info!(oonirun_link_id = id, "oonirun link created");
    json(
        &link.view(&link.nettests, 1, now, Some(&claims.account_id)),
        Cache::NoCache,
    )
}

/// `PUT /api/v2/oonirun/links/{id}`: owners (or admins) edit; a new revision only when the
/// nettests change; expired links are read-only (403).
pub async fn edit(s: Arc<State>, req: Request) -> HttpResult {
    let claims = s.auth.require(&req, Role::User).await.map_err(as_detail)?;
    let id = parse_link_id(&req)?;
    let body = body(&req)?;
    let mut link = s.links.get(id).await?.ok_or_else(not_found)?;
    if claims.role != Role::Admin {
        if link.creator_account_id != claims.account_id {
            return Err(not_found());
        }
        if claims.email_address.as_deref() != Some(body.author.as_str()) {
            return Err(as_detail(ApiError::forbidden(
                "You are not allowed to set the email_address to something other than your email address",
            )));
        }
    }
    let now = now_seconds();
    if link.expiration_date < now {
        return Err(as_detail(ApiError::forbidden(
            "OONI Run link has expired and cannot be edited",
        )));
    }
    if link.nettests != body.nettests {
        let revision = link.revision + 1;
        s.links
            .add_revision(
                id,
                &RevisionDoc {
                    revision,
                    date_created: now,
                    nettests: body.nettests.clone(),
                },
            )
            .await?;
        link.revision = revision;
        link.revision_created = now;
        link.nettests = body.nettests;
    }
    link.name = body.name;
    link.short_description = body.short_description;
    link.description = body.description;
    link.author = body.author;
    link.name_intl = body.name_intl;
    link.short_description_intl = body.short_description_intl;
    link.description_intl = body.description_intl;
    link.icon = body.icon;
    link.color = body.color;
    link.expiration_date = body.expiration_date.unwrap_or(now + Duration::days(180));
    link.date_updated = now;
    s.links.put(&link).await?;
    json(
        &link.view(
            &link.nettests,
            link.revision,
            link.date_created,
            Some(&claims.account_id),
        ),
        Cache::NoCache,
    )
}

/// The link at `revision` (latest when `None`) in its public shape.
async fn link_at(s: &State, id: u64, revision: Option<u64>, account: Option<&str>) -> HttpResult {
    let link = s.links.get(id).await?.ok_or_else(not_found)?;
    match revision.filter(|r| *r != link.revision) {
        None => json(
            &link.view(
                &link.nettests,
                link.revision,
                link.revision_created,
                account,
            ),
            Cache::NoCache,
        ),
        Some(r) => {
            let rev = s.links.revision(id, r).await?.ok_or_else(|| {
                as_detail(ApiError::not_found("OONI Run link revision not found"))
            })?;
            json(
                &link.view(&rev.nettests, r, rev.date_created, account),
                Cache::NoCache,
            )
        }
    }
}

/// `GET /api/v2/oonirun/links/{id}`: the latest revision.
pub async fn get(s: Arc<State>, req: Request) -> HttpResult {
    let id = parse_link_id(&req)?;
    let account = optional_user(&s.public_auth, &req)
        .await?
        .map(|c| c.account_id);
    link_at(&s, id, None, account.as_deref()).await
}

/// `GET /api/v2/oonirun/links/{id}/full-descriptor/{latest|N}`.
pub async fn full_descriptor(s: Arc<State>, req: Request) -> HttpResult {
    let id = parse_link_id(&req)?;
    let revision = parse_revision(&req)?;
    let account = optional_user(&s.public_auth, &req)
        .await?
        .map(|c| c.account_id);
    link_at(&s, id, revision, account.as_deref()).await
}

/// `GET /api/v2/oonirun/links/{id}/revisions`: `{revisions: ["3", "2", "1"]}`.
pub async fn revisions(s: Arc<State>, req: Request) -> HttpResult {
    let id = parse_link_id(&req)?;
    let revs = s.links.revisions(id).await?;
    if revs.is_empty() && s.links.get(id).await?.is_none() {
        return Err(not_found());
    }
    let list: Vec<String> = revs.iter().map(|r| r.revision.to_string()).collect();
    json(&json!({ "revisions": list }), Cache::NoCache)
}

/// `OonirunMeta`, the engine-descriptor body.
#[derive(Debug, Clone, Deserialize)]
pub struct OonirunMeta {
    pub run_type: String,
    pub is_charging: bool,
    pub probe_asn: String,
    pub probe_cc: String,
    pub network_type: String,
    #[serde(default)]
    pub website_category_codes: Vec<String>,
}

pub const NETWORK_TYPES: [&str; 8] = [
    "vpn",
    "wifi",
    "mobile",
    "wired_ethernet",
    "no_internet",
    "bluetooth",
    "usb",
    "unknown",
];

impl OonirunMeta {
    /// Checks the patterns and returns the ASN as a number.
    pub fn validate(&self) -> Result<u32, ApiError> {
        if self.run_type != "timed" && self.run_type != "manual" {
            return Err(invalid(
                &["run_type"],
                "String should match pattern '^(timed|manual)$'",
            ));
        }
        let digits = self.probe_asn.strip_prefix("AS").unwrap_or(&self.probe_asn);
        let asn_err = || {
            invalid(
                &["probe_asn"],
                "String should match pattern '^(AS)?([0-9]{1,10})$'",
            )
        };
        if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(asn_err());
        }
        if !NETWORK_TYPES.contains(&self.network_type.as_str()) {
            return Err(invalid(
                &["network_type"],
                "String should match one of the network types",
            ));
        }
        // Ten digits may exceed u32: such an ASN cannot exist, so no counts are found for it.
        digits
            .parse::<u64>()
            .map(|a| u32::try_from(a).unwrap_or(u32::MAX))
            .map_err(|_| asn_err())
    }
}

/// Upstream `USER_AGENT_PATTERN`: six comma-separated fields.
pub fn valid_user_agent(ua: &str) -> bool {
    let parts: Vec<&str> = ua.split(',').collect();
    if parts.len() != 6 {
        return false;
    }
    let ok = |s: &str, extra: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    ok(parts[0], "-_")
        && ok(parts[1], "-_.")
        && ok(parts[2], " ")
        && ok(parts[3], "-_")
        && ok(parts[4], "-_.")
        && ok(parts[5], "-_.")
}

/// The `websites_list_prioritized` target list for a probe.
/// The inputs of a prioritized target list and the `inputs_extra` object of each.
pub type Targets = (Vec<String>, Vec<Map<String, Value>>);

pub async fn prioritized_targets(
    src: &dyn TargetsSource,
    meta: &OonirunMeta,
    asn: u32,
) -> Result<Targets, ApiError> {
    let limit = ooni_domain::checkin::url_limit(&meta.run_type, meta.is_charging) as usize;
    let (entries, rules) = src
        .fetch(&meta.probe_cc, asn)
        .await
        .map_err(ApiError::unavailable)?;
    let list = ooni_domain::prio::generate_test_list(
        &entries,
        &rules,
        &meta.website_category_codes,
        limit,
        false,
    );
    let mut inputs = Vec::with_capacity(list.len());
    let mut extra = Vec::with_capacity(list.len());
    for item in list {
        inputs.push(item.url.to_owned());
        let mut m = Map::new();
        m.insert("category_code".into(), json!(item.category_code));
        m.insert("country_code".into(), json!(item.country_code));
        extra.push(m);
    }
    Ok((inputs, extra))
}

/// `POST /api/v2/oonirun/links/{id}/engine-descriptor/{latest|N}`: `{revision, nettests,
/// date_created}` with dynamic target lists filled in.
pub async fn engine_descriptor(s: Arc<State>, req: Request) -> HttpResult {
    let id = parse_link_id(&req)?;
    let revision = parse_revision(&req)?;
    if let Some(ua) = header(&req, "useragent") {
        if !valid_user_agent(ua) {
            return Err(ApiError::unprocessable(json!([{
                "loc": ["header", "useragent"],
                "msg": "Expected format: <software_name>,<software_version>,<platform>,<engine_name>,<engine_version>,<engine_version_full>",
                "type": "value_error"
            }])));
        }
    }
    let meta: OonirunMeta = json_body_422(&req)?;
    let asn = meta.validate()?;
    let link = s.links.get(id).await?.ok_or_else(not_found)?;
    let (rev, date_created, mut nettests) = match revision.filter(|r| *r != link.revision) {
        None => (link.revision, link.revision_created, link.nettests.clone()),
        Some(r) => {
            let rd = s.links.revision(id, r).await?.ok_or_else(|| {
                as_detail(ApiError::not_found("OONI Run link revision not found"))
            })?;
            (r, rd.date_created, rd.nettests)
        }
    };
    let mut targets: Option<Targets> = None;
    for nt in nettests.iter_mut() {
        if nt.targets_name.as_deref() == Some("websites_list_prioritized") {
            if targets.is_none() {
                targets = Some(prioritized_targets(s.targets.as_ref(), &meta, asn).await?);
            }
            if let Some((inputs, extra)) = &targets {
                nt.inputs = Some(inputs.clone());
                nt.inputs_extra = Some(extra.clone());
            }
        }
    }
    let body = json!({
        "revision": rev.to_string(),
        "nettests": nettests,
        "date_created": fmt_datetime(&date_created),
    });
    json(&body, Cache::NoCache)
}

/// `GET /api/v2/oonirun/links?is_mine=&is_expired=&only_latest=`: `{oonirun_links: [...]}`.
pub async fn list(s: Arc<State>, req: Request) -> HttpResult {
    let is_mine = query_bool(&req, "is_mine")?.unwrap_or(false);
    let is_expired = query_bool(&req, "is_expired")?.unwrap_or(false);
    let only_latest = query_bool(&req, "only_latest")?.unwrap_or(true);
    let account = optional_user(&s.public_auth, &req)
        .await?
        .map(|c| c.account_id);
    let now = now_seconds();
    let mut links: Vec<LinkDoc> = s
        .links
        .all()
        .await?
        .into_iter()
        .filter(|l| is_expired || l.expiration_date > now)
        .filter(|l| !is_mine || account.as_deref() == Some(l.creator_account_id.as_str()))
        .collect();
    links.sort_by_key(|l| l.oonirun_link_id.parse::<u64>().unwrap_or(0));
    let mut all_nettests: Vec<Vec<Nettest>> = Vec::with_capacity(links.len());
    for l in &links {
        if only_latest {
            all_nettests.push(l.nettests.clone());
        } else {
            let id: u64 = l.oonirun_link_id.parse().unwrap_or(0);
            let revs = s.links.revisions(id).await?;
            all_nettests.push(revs.into_iter().flat_map(|r| r.nettests).collect());
        }
    }
    let views: Vec<LinkView<'_>> = links
        .iter()
        .zip(all_nettests.iter())
        .map(|(l, nts)| l.view(nts, l.revision, l.date_created, account.as_deref()))
        .collect();
    json(&json!({ "oonirun_links": views }), Cache::NoCache)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "name": "integ-test name in English",
            "name_intl": {},
            "description": "integ-test description in English",
            "description_intl": {"es": "integ-test descripción en español"},
            "short_description": "integ-test short description in English",
            "short_description_intl": {"it": "integ-test descrizione breve in italiano"},
            "icon": "myicon",
            "author": "oonitarian@example.com",
            "nettests": [
                {"inputs": ["https://example.com/", "https://ooni.org/"], "targets_name": null, "inputs_extra": null,
                 "options": {"HTTP3Enabled": true}, "is_background_run_enabled_default": false,
                 "is_manual_run_enabled_default": false, "test_name": "web_connectivity"},
                {"inputs": null, "targets_name": "websites_list_prioritized", "inputs_extra": null, "options": {},
                 "is_background_run_enabled_default": false, "is_manual_run_enabled_default": false, "test_name": "dnscheck"}
            ]
        })
    }

    fn parse(v: Value) -> Result<LinkRequest, ApiError> {
        let r: LinkRequest =
            serde_json::from_value(v).map_err(|e| ApiError::unprocessable(e.to_string()))?;
        r.validate()?;
        Ok(r)
    }

    #[test]
    fn the_upstream_sample_link_is_valid_and_round_trips_its_nettests() {
        let r = parse(sample()).unwrap();
        let back = serde_json::to_value(&r.nettests).unwrap();
        assert_eq!(back, sample()["nettests"]);
    }

    #[test]
    fn empty_name_short_intl_values_and_bad_colors_are_422() {
        for (k, v) in [
            ("name", json!("")),
            ("name", json!("x".repeat(51))),
            ("author", json!("a")),
            ("color", json!("#12345")),
        ] {
            let mut z = sample();
            z[k] = v;
            assert_eq!(parse(z).unwrap_err().status, 422, "{k}");
        }
        let mut z = sample();
        z["name_intl"] = json!({"it": ""});
        assert_eq!(parse(z).unwrap_err().status, 422);
        let mut z = sample();
        z["name_intl"] = Value::Null;
        assert!(parse(z).is_ok(), "name_intl may be null");
        let mut z = sample();
        z["color"] = json!("#a0B1c2");
        assert!(parse(z).is_ok());
    }

    #[test]
    fn inputs_extra_must_match_inputs_and_exclude_targets_name() {
        let mut z = sample();
        z["nettests"][0]["inputs_extra"] = json!([{"provider": "riseupvpn"}]);
        assert_eq!(parse(z.clone()).unwrap_err().status, 422);
        z["nettests"][0]["inputs_extra"] = json!([{"provider": "a"}, {"provider": "b"}]);
        assert!(parse(z.clone()).is_ok());
        z["nettests"][0]["targets_name"] = json!("example_name");
        assert_eq!(parse(z).unwrap_err().status, 422);
    }

    #[test]
    fn engine_meta_patterns_are_enforced() {
        let meta = |run_type: &str, asn: &str, nt: &str| OonirunMeta {
            run_type: run_type.into(),
            is_charging: true,
            probe_asn: asn.into(),
            probe_cc: "VE".into(),
            network_type: nt.into(),
            website_category_codes: vec![],
        };
        assert_eq!(meta("timed", "AS1234", "wifi").validate().unwrap(), 1234);
        assert_eq!(meta("manual", "1234", "usb").validate().unwrap(), 1234);
        assert_eq!(
            meta("bad", "AS1234", "wifi").validate().unwrap_err().status,
            422
        );
        assert_eq!(
            meta("timed", "AS12345678901", "wifi")
                .validate()
                .unwrap_err()
                .status,
            422
        );
        assert_eq!(
            meta("timed", "AS", "wifi").validate().unwrap_err().status,
            422
        );
        assert_eq!(
            meta("timed", "AS1", "dialup")
                .validate()
                .unwrap_err()
                .status,
            422
        );
    }

    #[test]
    fn user_agents_need_six_well_formed_fields() {
        assert!(valid_user_agent("ooniprobe-android-unattended,3.8.2,android,ooniprobe-engine,3.17.2,ooniprobe-engine_1.2.3"));
        assert!(!valid_user_agent(
            "ooniprobe-android-unattended,3.8.2,android,ooniprobe-engine,3.17.2"
        ));
        assert!(!valid_user_agent("a,b,c,d,e,f/g"));
    }
}
